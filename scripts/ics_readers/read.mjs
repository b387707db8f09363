// Reads .ics files with Node `ical.js` (installed in tools/node_modules) and
// compares them with a manifest (see scripts/ics-readers.sh). Prints one
// summary line; every disagreement goes to stderr. Exit 1 on any.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const toolsPackage = new URL('../../tools/package.json', import.meta.url);
const require = createRequire(toolsPackage);
// The CommonJS build (the package's "require" export), resolved from tools/.
const ICAL = require('ical.js');
const version = JSON.parse(readFileSync(new URL('../../tools/node_modules/ical.js/package.json', import.meta.url))).version;
const READER = `node ical.js ${version}`;

function utc(time) {
  if (!time) return String(time);
  if (time.isDate) return `date ${time.toString()}`;
  if (time.zone === ICAL.Timezone.localTimezone) return `floating ${time.toString()}`;
  return time.toJSDate().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function check(entry, problems) {
  const path = entry.path;
  const same = (what, got, want) => {
    if (got !== want) problems.push(`${path}: ${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };
  let jcal;
  try {
    jcal = ICAL.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    problems.push(`${path}: does not parse: ${e.message}`);
    return 0;
  }
  // Several top-level components come back as an array of them.
  if (Array.isArray(jcal[0])) {
    problems.push(`${path}: ${jcal.length} top-level components, expected 1`);
    return 0;
  }
  const cal = new ICAL.Component(jcal);
  same('component', cal.name, 'vcalendar');
  same('METHOD', cal.getFirstPropertyValue('method'), entry.method ?? null);
  if (entry.calname != null) same('X-WR-CALNAME', cal.getFirstPropertyValue('x-wr-calname'), entry.calname);
  const events = cal.getAllSubcomponents('vevent');
  same('VEVENT count', events.length, entry.events.length);
  events.forEach((vevent, i) => {
    const want = entry.events[i];
    if (!want) return;
    const ev = new ICAL.Event(vevent);
    const tag = `VEVENT ${i} (${want.uid})`;
    same(`${tag} UID`, ev.uid, want.uid);
    same(`${tag} SEQUENCE`, ev.sequence ?? 0, want.sequence);
    same(`${tag} DTSTART`, utc(ev.startDate), want.start);
    same(`${tag} DTEND`, utc(ev.endDate), want.end);
    same(`${tag} STATUS`, vevent.getFirstPropertyValue('status'), want.status);
    if (!vevent.getFirstPropertyValue('dtstamp')) problems.push(`${path}: ${tag}: no DTSTAMP`);
  });
  return events.length;
}

const manifest = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const problems = [];
let events = 0;
for (const entry of manifest.files) events += check(entry, problems);
for (const p of problems) console.error(`ics-readers: ${READER}: ${p}`);
console.log(`ics-readers: ${READER}: ${manifest.files.length} files, ${events} events: ${problems.length ? 'FAILED' : 'ok'}`);
process.exit(problems.length ? 1 : 0);
