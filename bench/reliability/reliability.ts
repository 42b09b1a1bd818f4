/**
 * `npm run reliability`: the fuzz suite with more cases, the fault scenarios, 1,000 inspections
 * under a memory watch, the main commands under a network watch and the hostile workspace (links,
 * settings and oversized files a cloned repository can hold), summed up in one table.
 * Exits 1 when anything crashed, hung, leaked past its bound, touched the network, wrote outside
 * the hostile workspace or rewrote its files, refused without saying what to do, or blocked the
 * calling thread over 100 ms on a workspace file.
 *
 *   tsx bench/reliability/reliability.ts [--cases 2000] [--seed N] [--runs 1000]
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { DEFAULT_SEED, formatFuzzReport, fuzz } from "../../test/reliability/fuzz";
import { cancelLongJob, changeModelFilesWhileLoaded, killWorkerMidRun, refuseModelOverLimit } from "../../test/reliability/faults";
import { BLOCK_LIMIT_MS, formatHostileReport, runHostileWorkspace } from "../../test/reliability/hostile-workspace";
import { formatCurve, LOAD_BOUNDS, runLoad } from "../../test/reliability/load";
import { cliCommands, DELIBERATE_APIS, networkScratch, readAttempts, runDeliberateAttempts, runWatched, runWorkerWatched, unexpectedLocal } from "../../test/reliability/network";

const { values } = parseArgs({ options: { cases: { type: "string", default: "2000" }, seed: { type: "string", default: String(DEFAULT_SEED) }, runs: { type: "string", default: "1000" } } });
const cases = Number(values.cases);
const seed = Number(values.seed);
const runs = Number(values.runs);

function section(title: string): void {
  console.log(`\n== ${title}`);
}

async function main(): Promise<number> {
  const started = performance.now();

  // Load first: the fuzz threads and fault workers that run later would only add noise to its RSS.
  section(`load: ${runs} inspections in one process on the reference model`);
  const load = await runLoad({ runs, every: 100 });
  console.log(formatCurve(load.samples));
  console.log(`  ${load.msPerRun.toFixed(1)} ms per inspection`);
  const loadOk = load.heapGrowthMb < LOAD_BOUNDS.heapGrowthMb && load.rssGrowthMb < LOAD_BOUNDS.rssGrowthMb && load.lateRssGrowthMb < LOAD_BOUNDS.lateRssGrowthMb;

  section(`fuzz: ${cases} cases per target (fewer for costly ones), seed ${seed}, 5 s limit per case`);
  const report = await fuzz({ cases, seed, timeoutMs: 5000 });
  console.log(formatFuzzReport(report));
  const tried = report.targets.reduce((n, t) => n + t.tried, 0);
  const fuzzCrashes = report.targets.reduce((n, t) => n + t.crashes, 0);
  const hangs = report.targets.reduce((n, t) => n + t.hangs, 0);

  section("faults");
  const scenarios: Array<[string, () => Promise<number>]> = [
    ["worker killed mid-generation (x3)", () => killWorkerMidRun(3)],
    ["model files deleted / truncated while loaded", () => changeModelFilesWhileLoaded()],
    ["long job cancelled (x3), no process left", () => cancelLongJob(3)],
    ["model over the memory limit refused", () => refuseModelOverLimit()],
  ];
  let injected = 0;
  let faultFailures = 0;
  for (const [name, run] of scenarios) {
    const t = performance.now();
    try {
      const n = await run();
      injected += n;
      console.log(`  ok    ${name}: ${n} injected (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    } catch (error) {
      faultFailures++;
      console.log(`  FAIL  ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }

  section("network: main commands and the worker with every network API watched and blocked");
  const self = networkScratch();
  runDeliberateAttempts(self.log);
  const caught = new Set(readAttempts(self.log).filter((a) => a.kind === "network").map((a) => a.api));
  const watchWorks = DELIBERATE_APIS.every((api) => caught.has(api));
  console.log(`  watch self-check: ${DELIBERATE_APIS.filter((a) => caught.has(a)).length}/${DELIBERATE_APIS.length} deliberate attempts caught`);
  const net = networkScratch();
  let commandFailures = 0;
  const commands = cliCommands(net.dir);
  for (const c of commands) {
    const r = runWatched(c.name, c.args, net.log);
    const ok = r.status === 0 || (c.name === "faithfulness" && r.status === 1);
    if (!ok) commandFailures++;
    console.log(`  ${ok ? "ok  " : "FAIL"}  loupe ${c.name} (${(r.ms / 1000).toFixed(1)} s)${ok ? "" : `: ${r.stderr.slice(0, 500)}`}`);
  }
  const w = await runWorkerWatched(net.log);
  if (w.status !== 0) commandFailures++;
  console.log(`  ${w.status === 0 ? "ok  " : "FAIL"}  ${w.name} (${(w.ms / 1000).toFixed(1)} s)${w.status === 0 ? "" : `: ${w.stderr}`}`);
  const attempts = readAttempts(net.log);
  const networkAttempts = attempts.filter((a) => a.kind === "network").length + unexpectedLocal(attempts).length;
  for (const a of attempts.filter((x) => x.kind === "network")) console.log(`  attempt: ${a.api} ${a.target} (${a.argv.join(" ")})\n${a.stack}`);
  for (const dir of [self.dir, net.dir]) fs.rmSync(dir, { recursive: true, force: true });

  section("hostile workspace: links out of .loupe/, restricted settings, oversized files, every command that reaches them");
  const hostile = await runHostileWorkspace({ cli: true });
  console.log(formatHostileReport(hostile));
  const hostileOk = hostile.outsideChanged.length === 0 && hostile.workspaceRewritten.length === 0 && hostile.unclearRefusals.length === 0 && hostile.slowSteps.length === 0;
  const longest = Math.max(...hostile.steps.filter((s) => !s.step.startsWith("loupe ")).map((s) => s.blockedMs));

  const crashes = fuzzCrashes + faultFailures + commandFailures;
  const rows: Array<[string, string]> = [
    ["inputs tried", `${tried} (${report.targets.length} fuzz targets, seed ${seed})`],
    ["faults injected", `${injected} (${scenarios.length - faultFailures}/${scenarios.length} scenarios handled)`],
    ["crashes", `${crashes}`],
    ["hangs", `${hangs}`],
    [
      "memory growth",
      `heap ${signed(load.heapGrowthMb)} MB, RSS ${signed(load.rssGrowthMb)} MB (${signed(load.lateRssGrowthMb)} MB over the second half) in ${runs} inspections; bounds ${LOAD_BOUNDS.heapGrowthMb} / ${LOAD_BOUNDS.rssGrowthMb} / ${LOAD_BOUNDS.lateRssGrowthMb} MB`,
    ],
    [
      "hostile workspace",
      `${hostile.steps.length} steps, ${hostile.steps.filter((s) => s.result === "refused").length} refused with a file and a fix; files changed outside: ${hostile.outsideChanged.length}, workspace files rewritten: ${hostile.workspaceRewritten.length}; longest block ${longest.toFixed(0)} ms (bound ${BLOCK_LIMIT_MS})`,
    ],
    ["network attempts", `${networkAttempts} (${commands.length} CLI commands + the worker; watch caught ${caught.size >= DELIBERATE_APIS.length ? DELIBERATE_APIS.length : caught.size}/${DELIBERATE_APIS.length} deliberate attempts)`],
  ];
  section(`reliability (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  console.log("| measure | value |\n| --- | --- |");
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  return crashes === 0 && hangs === 0 && networkAttempts === 0 && watchWorks && loadOk && hostileOk ? 0 : 1;
}

function signed(x: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
