export { type DeploymentView, DeployService } from './deploy-service.ts';
