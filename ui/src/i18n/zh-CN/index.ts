import type { Catalogue } from '../index';
import { account } from './account';
import { admin } from './admin';
import { auth } from './auth';
import { common } from './common';
import { operations } from './operations';
import { projectTabs } from './project-tabs';
import { projects } from './projects';
import { repositories } from './repositories';

/** The Simplified Chinese catalogue (loaded only when chosen). */
export const catalogue: Catalogue = { ...common, ...auth, ...projects, ...repositories, ...projectTabs, ...admin, ...operations, ...account };
