/**
 * A graph that loads can still fail inside onnxruntime when it runs (an imported export whose
 * position table is shorter than config.json says, a shape the exporter fixed). onnxruntime's
 * message names the node; this turns it into a LoupeError that names the model file too.
 */
import { LoupeError } from "../errors";

/** onnxruntime's "Non-zero status code returned while running Gather node. Name:'/wpe/Gather' Status Message: ...". */
const NODE_FAILURE = /running (\S+) node\. Name:'([^']*)' Status Message: ([\s\S]*)/;

export function runFailure(error: unknown, modelFile: string): LoupeError {
  if (error instanceof LoupeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const node = NODE_FAILURE.exec(message);
  const what = node ? `its ${node[1]} node "${node[2]}" failed: ${node[3].trim()}` : `onnxruntime failed: ${message.trim()}`;
  return new LoupeError(
    "bad-file",
    `${modelFile} could not run on this input: ${what}. The graph does not fit its config.json or this input (a table shorter than the context, a shape fixed at export); export it again or check config.json.`,
    modelFile,
  );
}
