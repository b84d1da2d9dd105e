/**
 * knex-pglite's client, mended (see below). Knex internals live in lib/knex/ only.
 */
type ClientClass = new (
  ...args: any[]
) => {
  processResponse(obj: { method?: string }, runner: unknown): unknown;
  destroy(callback?: (error?: unknown) => void): Promise<void>;
};

/**
 * Two fixes over knex-pglite 0.14: it derives the command tag from the builder method, so `del()`
 * is tagged 'DEL' and resolves to the raw result instead of the deleted-row count every other
 * dialect returns; and it closes the database only through the pool, so a database that never
 * served a query stayed open and its WASM timers kept the process alive after destroy().
 */
export function pgliteClient<T extends ClientClass>(Client: T): T {
  return class extends Client {
    declare pglite: { closed: boolean; close(): Promise<void> };

    override processResponse(obj: { method?: string }, runner: unknown): unknown {
      return super.processResponse(obj.method === 'del' ? { ...obj, method: 'delete' } : obj, runner);
    }

    override async destroy(callback?: (error?: unknown) => void): Promise<void> {
      await super.destroy();
      try {
        if (!this.pglite.closed) await this.pglite.close();
      } catch (error) {
        if (!callback) throw error;
        return callback(error);
      }
      callback?.();
    }
  };
}

