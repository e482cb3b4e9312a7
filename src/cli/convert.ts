// Placeholder until the convert command lands (owned by another engineer; replace this file whole).
import { EXIT_FAILURE, type CliIO } from './io.js';

export async function convert(_args: string[], io: CliIO): Promise<number> {
  io.stderr.write('mram convert: not built yet\n');
  return EXIT_FAILURE;
}
