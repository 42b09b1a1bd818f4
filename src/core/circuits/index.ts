export * from "./transcoder";
export * from "./transcoder-files";
export * from "./random-transcoders";
export * from "./frozen-model";
export * from "./replacement";
export * from "./targets";
export * from "./attribution";
export * from "./prune";
