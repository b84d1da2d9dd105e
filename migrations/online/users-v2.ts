/**
 * The example online migration: `users` -> `users_v2`, splitting `name` into `first_name` and
 * `last_name` at the first space. Both tables are sharded by `id`, the migration's key.
 */
import type { OnlineMigration } from '../../lib/index.js';

export const usersV2: OnlineMigration = {
  name: 'users_v2',
  source: 'users',
  target: 'users_v2',
  key: ['id'],
  transform: (user) => {
    const name = String(user.name);
    const space = name.indexOf(' ');
    return {
      id: user.id,
      first_name: space < 0 ? name : name.slice(0, space),
      last_name: space < 0 ? '' : name.slice(space + 1),
      email: user.email,
      created_at: user.created_at,
    };
  },
  reverse: (user) => ({
    id: user.id,
    name: user.last_name === '' ? user.first_name : `${user.first_name} ${user.last_name}`,
    email: user.email,
    created_at: user.created_at,
  }),
};
