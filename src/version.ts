declare const __EPMD_NG_VERSION__: string | undefined;

/** Set by the bundler from package.json; "dev" when running from source. */
export const VERSION = typeof __EPMD_NG_VERSION__ === 'string' ? __EPMD_NG_VERSION__ : 'dev';
