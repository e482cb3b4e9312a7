// Hand-written findings for the "## End to end" section (kept here so a re-run regenerates the
// figures without losing the analysis). Update after profiling.
export const FINDINGS = `### What the profiles show

(pending)
`;
