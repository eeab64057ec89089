export { PipelineService, type RunView } from './pipeline-service.ts';
