/**
 * Rendering a chat template someone else wrote (it comes with a downloaded model) under bounds:
 * a `{% for i in range(10**9) %}` loop or an output that doubles each step must end in a clear
 * error, not a frozen editor or an exhausted heap. @huggingface/jinja's own Template.render has no
 * limits, so the program it parses runs here on an interpreter that counts its steps, watches the
 * clock and the size of each value it builds, and a `range` that refuses more than the budget.
 */
import { Environment, Interpreter, Template } from "@huggingface/jinja";

export interface RenderBounds {
  /** Interpreter steps (every expression and statement evaluated). */
  readonly maxSteps: number;
  readonly maxMilliseconds: number;
  /** Characters in any one string the template builds, the output included. */
  readonly maxChars: number;
}

/** Far above what real chat templates need for long chats (a few thousand steps a message). */
export const DEFAULT_RENDER_BOUNDS: RenderBounds = { maxSteps: 5_000_000, maxMilliseconds: 5_000, maxChars: 8 * 1024 * 1024 };

/** Thrown when a template passes a bound; the caller names the file. */
export class TemplateBoundError extends Error {}

type Statement = Parameters<Interpreter["evaluate"]>[0];
type RuntimeValue = ReturnType<Interpreter["evaluate"]>;

class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private readonly started = Date.now();

  constructor(
    env: Environment,
    private readonly bounds: RenderBounds,
  ) {
    super(env);
  }

  /** Counts `n` steps (a range's items count one each) and checks the clock every 1,024. */
  spend(n: number): void {
    const before = this.steps;
    this.steps += n;
    if (this.steps > this.bounds.maxSteps) throw new TemplateBoundError(`it ran past ${this.bounds.maxSteps.toLocaleString("en-US")} steps (a loop too long?)`);
    if (this.steps >> 10 !== before >> 10 && Date.now() - this.started > this.bounds.maxMilliseconds) {
      throw new TemplateBoundError(`it ran past ${this.bounds.maxMilliseconds} ms`);
    }
  }

  override evaluate(statement: Statement, environment: Environment): RuntimeValue {
    this.spend(1);
    const value = super.evaluate(statement, environment);
    if (typeof value.value === "string" && value.value.length > this.bounds.maxChars) {
      throw new TemplateBoundError(`it built a text of ${value.value.length.toLocaleString("en-US")} characters (the limit is ${this.bounds.maxChars.toLocaleString("en-US")})`);
    }
    return value;
  }
}

/** Render `source` with `variables`, as Template.render does, within `bounds`. */
export function renderBounded(source: string, variables: Record<string, unknown>, bounds: RenderBounds = DEFAULT_RENDER_BOUNDS): string {
  const parsed = new Template(source).parsed;
  const env = new Environment();
  const interpreter = new BoundedInterpreter(env, bounds);
  for (const [name, value] of Object.entries({ ...globals(interpreter), ...variables })) env.set(name, value);
  return String(interpreter.run(parsed).value);
}

/** The globals @huggingface/jinja (and transformers) give templates, with a bounded range(). */
function globals(interpreter: BoundedInterpreter): Record<string, unknown> {
  return {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    raise_exception: (message: unknown) => {
      throw new Error(String(message));
    },
    range: (start: number, stop?: number, step = 1) => {
      if (stop === undefined) [start, stop] = [0, start];
      if (step === 0) throw new Error("range() step must not be zero");
      const count = Math.max(0, Math.ceil((stop - start) / step));
      interpreter.spend(count);
      return Array.from({ length: count }, (_, i) => start + i * step);
    },
    strftime_now: (format: string) => strftime(new Date(), format),
  };
}

/** The strftime codes chat templates use for today's date (Llama 3's "%d %b %Y"). */
function strftime(date: Date, format: string): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const month = (style: "long" | "short") => new Intl.DateTimeFormat("en-US", { month: style }).format(date);
  const codes: Record<string, () => string> = {
    "%Y": () => String(date.getFullYear()),
    "%m": () => pad(date.getMonth() + 1),
    "%d": () => pad(date.getDate()),
    "%b": () => month("short"),
    "%B": () => month("long"),
    "%H": () => pad(date.getHours()),
    "%M": () => pad(date.getMinutes()),
    "%%": () => "%",
  };
  return format.replace(/%[YmdbBHM%]/g, (code) => codes[code]());
}
