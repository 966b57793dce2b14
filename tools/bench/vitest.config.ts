import { defineConfig } from 'vitest/config';
import { projectsFor } from '../../vitest.shared.ts';

export default defineConfig({ test: { projects: projectsFor(import.meta.dirname) } });
