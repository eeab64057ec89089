export { type AppServices, buildApp, type RouteInfo, registeredRoutes } from './app.ts';
export { parseRange } from './routes/artifacts.ts';
