/** Makes untrusted text (idstrs, XML, machine names) safe to print: control characters become escapes. */
export function escapeControl(s: string): string {
  // C0, DEL, C1 and the bidi/line-separator controls that can rewrite a terminal line.
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
