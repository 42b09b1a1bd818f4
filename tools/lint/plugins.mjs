// The lint toolchain's packages, resolved from tools/lint/node_modules (see package.json here for why
// they do not live in the root package). eslint.config.mjs takes them from this module.
export { defineConfig } from "eslint/config";
export { default as js } from "@eslint/js";
export { default as tseslint } from "typescript-eslint";
export { default as globals } from "globals";
