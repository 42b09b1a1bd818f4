export { Tokenizer, type DecodeOptions, type EncodeOptions, type Encoding } from "./tokenizer";
