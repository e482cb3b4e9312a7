// Capability edits of the CONFIGURATION record and of the vmdesc's copy of it (spec §2, §6.2).
import { SUBSECTION_CAPABILITIES } from '../format/constants.js';
import type { Configuration } from '../codec/configuration.js';
import type { VmsdDescription } from '../codec/vmdesc.js';

/** The configuration with `cap` switched on or off; the capabilities subsection disappears when empty. */
export function withCapability(config: Configuration, cap: string, on: boolean): Configuration {
  const caps = (config.capabilities ?? []).filter((c) => c !== cap);
  if (on) caps.push(cap);
  return { ...config, capabilities: caps.length ? caps : null };
}

/** The vmdesc "configuration" entry re-described for `config` (caps_count + capabilities sizes). */
export function describeConfiguration(desc: VmsdDescription | undefined, config: Configuration): VmsdDescription | undefined {
  if (!desc) return desc;
  const subsections = (desc.subsections ?? []).filter((s) => s.vmsd_name !== SUBSECTION_CAPABILITIES);
  const caps = config.capabilities;
  if (caps) {
    const size = caps.reduce((n, c) => n + 1 + c.length, 0);
    const entry: VmsdDescription = {
      vmsd_name: SUBSECTION_CAPABILITIES,
      version: 1,
      fields: [
        { name: 'caps_count', type: 'uint32', size: 4 },
        { name: 'capabilities', type: 'capability', size },
      ],
    };
    // QEMU writes subsections in configuration order: target-page-bits, capabilities, uuid.
    const uuidAt = subsections.findIndex((s) => s.vmsd_name === 'configuration/uuid');
    subsections.splice(uuidAt < 0 ? subsections.length : uuidAt, 0, entry);
  }
  const out: VmsdDescription = { ...desc };
  if (subsections.length) out.subsections = subsections;
  else delete out.subsections;
  return out;
}

/**
 * The vmdesc JSON with its configuration entry replaced, serialised in the input's style
 * (QEMU 10 separates with ", " and ": "; older ones compactly).
 */
export function rewriteVmdescConfiguration(json: string, config: Configuration): string {
  const v = JSON.parse(json) as Record<string, unknown>;
  if (v.configuration) v.configuration = describeConfiguration(v.configuration as VmsdDescription, config);
  const spaced = /^\{\s*"[^"]*"\s*:\s/.test(json) || json.includes('", "');
  return spaced ? stringifySpaced(v) : JSON.stringify(v);
}

function stringifySpaced(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stringifySpaced).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${JSON.stringify(k)}: ${stringifySpaced(x)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(v);
}
