// Lists the npm packages that esbuild bundled into dist/epmd-ng.mjs and its chunks in dist/lib
// (from the bundle's own "// node_modules/<package>/..." path comments) with their versions, licences and copyright
// lines, in the forms the packages need. Used by scripts/package.sh.
//
//   node packaging/bundled.mjs deb-copyright   DEP-5 paragraphs for debian/copyright (appended to
//                                              packaging/deb/copyright.in)
//   node packaging/bundled.mjs rpm-provides    "Provides: bundled(nodejs-NAME) = VERSION" lines
//   node packaging/bundled.mjs rpm-license     the SPDX expression for the RPM License: tag
//   node packaging/bundled.mjs licence-texts   every bundled package's own licence file, for %license
//
// Fails when a bundled package is missing from node_modules or has no licence file: the packages
// must never ship code whose licence they do not carry.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist/epmd-ng.mjs');
const chunks = path.join(root, 'dist/lib');

function fail(msg) {
  console.error(`bundled.mjs: ${msg}`);
  process.exit(1);
}

function bundledPackages() {
  if (!existsSync(bundle)) fail(`${bundle} is missing; run npm run build first`);
  const files = [bundle, ...(existsSync(chunks) ? readdirSync(chunks).map((f) => path.join(chunks, f)) : [])];
  const names = new Set();
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^\/\/ node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\//gm)) names.add(m[1]);
  }
  return [...names].sort().map((name) => {
    const dir = path.join(root, 'node_modules', name);
    if (!existsSync(path.join(dir, 'package.json'))) fail(`bundled package ${name} is not in node_modules (run npm ci)`);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const licenceFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    if (!licenceFile) fail(`bundled package ${name} has no licence file`);
    const text = readFileSync(path.join(dir, licenceFile), 'utf8').replace(/\r\n/g, '\n').trim();
    const copyright = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^(copyright\b|©|\(c\))/i.test(l) && !/copyright notice|copyright holders?\b(?! ?[,:])/i.test(l))
      .map((l) => l.replace(/^copyright\s*/i, '').replace(/^(\(c\)|©)\s*/i, '').trim());
    const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
    if (typeof pkg.license !== 'string') fail(`bundled package ${name} has no SPDX licence in package.json`);
    return {
      name,
      version: pkg.version,
      spdx: pkg.license,
      licenceFile,
      text,
      copyright: copyright.length > 0 ? copyright : [author ?? `the ${name} authors`],
    };
  });
}

// Debian's short names (copyright-format 1.0) for the SPDX identifiers npm packages use.
const DEBIAN_NAME = { MIT: 'Expat', ISC: 'ISC', 'BSD-3-Clause': 'BSD-3-clause', 'BSD-2-Clause': 'BSD-2-clause' };

const LICENCE_TEXT = {
  Expat: `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`,
  'BSD-3-clause': `Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice,
   this list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from this
   software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE.`,
};

/** A DEP-5 multi-line field value: continuation lines start with a space, empty ones are " .". */
function field(lines) {
  return lines.map((l, i) => (i === 0 ? l : l === '' ? ' .' : ` ${l}`)).join('\n');
}

function debCopyright(pkgs) {
  const out = [];
  const used = new Set();
  for (const p of pkgs) {
    const name = DEBIAN_NAME[p.spdx];
    if (!name) fail(`no Debian licence name for ${p.spdx} (bundled package ${p.name}); add it to bundled.mjs`);
    used.add(name);
    out.push(
      `Files: node_modules/${p.name}/*\nCopyright: ${field(p.copyright)}\nLicense: ${name}\nComment: npm package ${p.name} ${p.version}`,
    );
  }
  for (const name of [...used].sort()) {
    const text = LICENCE_TEXT[name];
    if (!text) fail(`no licence text for ${name}; add it to bundled.mjs`);
    out.push(`License: ${name}\n${field(['', ...text.split('\n')]).slice(1)}`);
  }
  return `${out.join('\n\n')}\n`;
}

const mode = process.argv[2];
const pkgs = bundledPackages();
switch (mode) {
  case 'deb-copyright':
    process.stdout.write(debCopyright(pkgs));
    break;
  case 'rpm-provides':
    process.stdout.write(pkgs.map((p) => `Provides: bundled(nodejs-${p.name}) = ${p.version}\n`).join(''));
    break;
  case 'rpm-license':
    process.stdout.write(`${['Apache-2.0', ...new Set(pkgs.map((p) => p.spdx).sort())].join(' AND ')}\n`);
    break;
  case 'licence-texts':
    process.stdout.write(
      `Licences of the npm packages bundled into /usr/lib/epmd-ng/epmd-ng.mjs and /usr/lib/epmd-ng/lib.\n\n` +
        pkgs.map((p) => `${'='.repeat(72)}\n${p.name} ${p.version} (${p.spdx}), from its ${p.licenceFile}\n${'='.repeat(72)}\n\n${p.text}\n`).join('\n'),
    );
    break;
  default:
    fail('usage: bundled.mjs deb-copyright | rpm-provides | rpm-license | licence-texts');
}
