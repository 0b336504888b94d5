/** The explainer's only I/O: reads the named files, or standard input for none or `-`. */
import { readFile } from 'node:fs/promises';
import type { LogInput } from './parse.ts';

export async function readLogInputs(files: string[], stdin: () => Promise<string>): Promise<LogInput[]> {
  const names = files.length ? files : ['-'];
  return Promise.all(names.map(async (name) => ({ name, text: name === '-' ? await stdin() : await readFile(name, 'utf8') })));
}
