// Bundles the two pages (src/visitor.ts, src/agent.ts) into dist/ with esbuild and
// copies the static files from public/. `npm run build` generates src/gen first.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
cpSync("public", "dist", { recursive: true });
await build({
  entryPoints: ["src/visitor.ts", "src/agent.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outdir: "dist",
  logLevel: "warning",
});
console.log("console built into dist/");
