// The npm `hashring` package (the benchmark's baseline) ships no types.
declare module 'hashring' {
  export default class HashRing {
    constructor(servers: string[] | Record<string, number | { weight: number }>);
    get(key: string): string;
  }
}
