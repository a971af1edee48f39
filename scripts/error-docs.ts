/**
 * docs/errors.md, generated from the error-code table in src/errors.ts — the table is
 * the source, the page is never edited by hand. test/errors.test.ts fails when the
 * page and the table differ.
 *
 *   npx tsx scripts/error-docs.ts           print the page
 *   npx tsx scripts/error-docs.ts --write   rewrite docs/errors.md
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ERROR_TABLE, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, problemDetails, ErrorCodes, type ErrorSpec } from '../src/errors.js';

export const ERROR_DOCS_PATH = join(import.meta.dirname, '..', 'docs', 'errors.md');

/** A table cell: one line, pipes escaped. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderErrorDocs(): string {
  const rows = Object.values(ERROR_TABLE) as ErrorSpec[];
  const areas = [...new Set(rows.map((r) => r.area))];
  const example = JSON.stringify(problemDetails(ErrorCodes.ADMIN_AUTH, 'missing or wrong admin token'), null, 2);
  const out: string[] = [
    '<!-- Generated from src/errors.ts by `npx tsx scripts/error-docs.ts --write`; do not edit (test/errors.test.ts checks it). -->',
    '# Error codes',
    '',
    'Every error the bridge raises on purpose carries a stable `BRIDGE_ERR_*` code — in thrown errors, log',
    'lines (`err.code`, and the `code` of a refused call), call end reasons (`agent-error:BRIDGE_ERR_…`) and',
    'HTTP error bodies. A code never changes once released; match on it, not on the text. The category says',
    'whether trying again later can help (`unavailable`) or something must be fixed first.',
    '',
    '## HTTP error bodies',
    '',
    `Every HTTP error — a refused webhook or upgrade, an admin route, a malformed request, an unknown route — is`,
    `answered as RFC 9457 problem details (\`${PROBLEM_CONTENT_TYPE}\`): \`type\` names the code`,
    `(\`${PROBLEM_TYPE_PREFIX}<code>\`, an identifier, not a link), \`title\` is the meaning below, \`status\``,
    'the HTTP status, `detail` this occurrence, and `code` the stable code. Some add members of their own',
    '(`reason` on a refused upgrade). A request that fails its route\'s schema gets 400 `BRIDGE_ERR_BAD_REQUEST`',
    'with the schema\'s message as `detail`. `GET /readyz` is a status document, not an error: its 503 keeps',
    'its own body (`ready`, `reason`, …).',
    '',
    '```json',
    example,
    '```',
    '',
    'The HTTP column gives the status the bridge answers with the code, where it has one.',
  ];
  for (const area of areas) {
    out.push('', `## ${area}`, '', '| Code | HTTP | Category | Meaning | How to fix |', '|---|---|---|---|---|');
    for (const r of rows.filter((x) => x.area === area)) out.push(`| \`${r.code}\` | ${r.status ?? '—'} | ${r.category} | ${cell(r.meaning)} | ${cell(r.fix)} |`);
  }
  out.push(
    '',
    '## End reasons that are not codes',
    '',
    'A Media Stream whose `start` lacks the stream token its webhook issued (`vb_token` parameter; signature',
    'checks on) is closed before any agent or record, with the end reason `stream-token-missing`, `-malformed`,',
    "`-expired`, `-mismatch` or `-reused`. Point the number at this bridge's `/twilio/voice`; keep the",
    '`<Parameter>`s of its TwiML if you rewrite it; all instances must share `TWILIO_AUTH_TOKEN`.',
    '',
  );
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--write')) writeFileSync(ERROR_DOCS_PATH, renderErrorDocs());
  else process.stdout.write(renderErrorDocs());
}
