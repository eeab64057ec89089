export * from './authorizer.ts';
export * from './clock.ts';
export * from './config.ts';
export * from './context.ts';
export * from './errors.ts';
export * from './flat-config.ts';
export * from './ids.ts';
export * from './names.ts';
