/**
 * Pipes a readable into a writable and settles once both are done. Unlike stream.pipeline, a
 * failure of the writer does not destroy the reader: the reader runs to its end (its data
 * dropped) and the promise rejects then, so that a source which must be read to its end (a
 * PostgreSQL COPY TO, whose connection is unusable mid-stream) is left in a clean state. A
 * failure of the reader destroys the writer with that error.
 */
import type { Readable, Writable } from 'node:stream';

export function pipeToEnd(reading: Readable, writing: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let refused: unknown;
    let ended = false;
    reading.once('error', (error) => {
      writing.destroy(error);
      reject(error);
    });
    // A writer may fail after the reader ended (a COPY refused at its end): then at once.
    writing.once('error', (error) => {
      refused = error;
      if (ended) return reject(error);
      reading.unpipe(writing);
      reading.resume();
    });
    reading.once('end', () => {
      ended = true;
      if (refused !== undefined) reject(refused);
    });
    writing.once('finish', resolve);
    reading.pipe(writing);
  });
}
