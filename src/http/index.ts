export { type AppServices, buildApp } from './app.ts';
export { parseRange } from './routes/artifacts.ts';
