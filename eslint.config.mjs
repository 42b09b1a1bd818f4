// Lint: a small recommended rule set, plus the layer boundaries of DESIGN.md's rooms, which the
// per-layer tsconfigs cannot express (a `vscode` import type-checks anywhere @types/vscode is installed).
// Run with `npm run lint`; the toolchain lives in tools/lint/.
import { builtinModules } from "node:module";
import { defineConfig, globals, js, tseslint } from "./tools/lint/plugins.mjs";

const nodeBuiltins = [...builtinModules.filter((name) => !name.startsWith("_")), "node:*"];

/** One no-restricted-imports entry per forbidden module or folder, all with the same reason. */
function forbid(reason, { modules = [], folders = [], typesOnly = [], valuesAllowed = [] }) {
  return [
    "error",
    {
      paths: modules.filter((m) => !m.includes("*")).map((name) => ({ name, message: reason })),
      patterns: [
        ...modules.filter((m) => m.includes("*")).map((m) => ({ group: [m], message: reason })),
        ...folders.map((folder) => ({ group: [`**/${folder}`, `**/${folder}/**`], message: reason })),
        // A regex rather than a glob: gitignore-style globs cannot re-include a file under an excluded folder.
        ...typesOnly.map((folder) => ({ regex: typesOnlyRegex(folder, valuesAllowed), message: reason, allowTypeImports: true })),
      ],
    },
  ];
}

/** Matches `folder` and everything under it except the modules in `allowed` (paths from the repo root). */
function typesOnlyRegex(folder, allowed) {
  const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const exceptions = allowed.filter((m) => m.startsWith(`${folder}/`)).map((m) => escape(m.slice(folder.length + 1)));
  const rest = exceptions.length ? `(?!(?:${exceptions.join("|")})(?:\\.ts)?$)` : "";
  return `(^|/)${escape(folder)}(/${rest}.*)?$`;
}

export default defineConfig(
  { ignores: ["**/node_modules/", "dist/", "out/", ".cache/", ".vscode-test/", "models/", "test-output/", "bench/data/"] },
  js.configs.recommended,
  tseslint.configs.recommended,
  // `const { big, ...rest } = x` is how the code leaves a field out of a copy.
  { rules: { "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }] } },
  // Tests match indented output literally: "\n  1\. " reads better than "\n {2}1\. ".
  { files: ["test/**/*.ts"], rules: { "no-regex-spaces": "off" } },
  // Build scripts and the network watch preloaded into test processes are plain Node JavaScript.
  { files: ["**/*.mjs", "**/*.cjs"], languageOptions: { globals: globals.node } },
  { files: ["**/*.cjs"], languageOptions: { sourceType: "commonjs" }, rules: { "@typescript-eslint/no-require-imports": "off" } },
  {
    files: ["src/core/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": forbid(
        "src/core is pure TypeScript shared by the worker, the CLI and the tests: it must not import vscode or the layers above it. Put editor glue in src/extension.",
        { modules: ["vscode"], folders: ["extension", "worker", "cli"] },
      ),
    },
  },
  {
    files: ["webview/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": forbid(
        "webview/ runs in the editor's browser sandbox: no Node modules, no vscode, no extension or worker code. It gets results as messages; import core types with `import type`.",
        {
          modules: [...nodeBuiltins, "onnxruntime-node", "vscode"],
          folders: ["src/extension", "src/worker", "src/cli"],
          typesOnly: ["src/core"],
          // The panel protocol is the one seam both sides run: its guards are plain functions, and
          // tsconfig.webview.json (no Node types) fails the build if it ever imports Node. The
          // circuit panel's graph, pruning and layout are pure too: its page prunes and hit-tests live,
          // and links feature nodes to Neuronpedia, unpacks the links it is posted (circuit-wire) and
          // stamps its hops on a trace's timeline.
          valuesAllowed: ["src/core/view/panel-protocol", "src/core/view/circuit-graph", "src/core/view/circuit-prune", "src/core/view/circuit-layout", "src/core/view/circuit-wire", "src/core/timeline", "src/core/sae/releases/neuronpedia"],
        },
      ),
    },
  },
  {
    files: ["src/worker/**/*.ts", "src/cli/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": forbid(
        "src/worker and src/cli run outside the editor: they must not import vscode or src/extension.",
        { modules: ["vscode"], folders: ["extension"] },
      ),
    },
  },
);
