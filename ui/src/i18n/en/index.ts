// Explicit .ts extensions: the server's tests import this catalogue too (test/support/browser.ts), under Node's rules.
import { account } from './account.ts';
import { admin } from './admin.ts';
import { auth } from './auth.ts';
import { common } from './common.ts';
import { operations } from './operations.ts';
import { projectTabs } from './project-tabs.ts';
import { projects } from './projects.ts';
import { repositories } from './repositories.ts';

/** The English catalogue: the portal's source strings, and the keys every other catalogue must have. */
export const en = { ...common, ...auth, ...projects, ...repositories, ...projectTabs, ...admin, ...operations, ...account };
