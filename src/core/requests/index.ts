export type { Backend, RequestOptions } from "./backend";
export { bindRequests, REQUESTS, type BoundRequests, type FaithfulnessParams, type Methods, type ParamsOf, type RequestName, type Requests, type ResultOf } from "./catalogue";
export type { CircuitToken, CircuitTrace, InterveneCircuitParams, TraceCircuitParams, TranscoderFeatureParams } from "./circuits";
export type { FeatureDashboardParams, FeaturePicks, FeaturePicksParams, LabelsFileParams } from "./feature-files";
export { InProcessBackend } from "./in-process";
export type { GenerateParams, LoadParams, ModelInfo, RunResultWire, WireTensor } from "./model";
export { patchingInputs, type AttributeParams, type PatchParams, type PatchReply } from "./patching";
export { request, type ProgressCallback, type Request, type RequestContext } from "./request";
export { loadHookedModel, ModelSession, ModelState, RecentInspections } from "./session";
