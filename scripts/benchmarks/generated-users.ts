/** The `users` rows benchmarks load with COPY: ids 1..count, names with a space (users -> users_v2 splits them). */
export const USER_COLUMNS = ['id', 'name', 'email', 'created_at'];
const CREATED_AT = new Date('2026-01-01T00:00:00Z');

/** The rows among ids 1..count that `keep` accepts (a shard's own rows, the moving ones). */
export function* generatedUsers(count: number, keep: (id: number) => boolean): Generator<Record<string, unknown>> {
  for (let id = 1; id <= count; id++) {
    if (keep(id)) yield { id, name: `First${id} Last${id % 9973}`, email: `user${id}@example.com`, created_at: CREATED_AT };
  }
}
