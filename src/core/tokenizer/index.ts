export { Tokenizer, type Encoding } from "./tokenizer";
