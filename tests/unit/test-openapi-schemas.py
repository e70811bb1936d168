#!/usr/bin/python3
"""scripts/openapi-schemas.py refuses a document whose schemas say what
src/schema would not check, and writes a blob that names operations and
keeps no annotations.  Prints TAP.  argv[1]: the script."""
import json
import os
import re
import subprocess
import sys
import tempfile

SCRIPT = sys.argv[1]
BASE = '''openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /x/{id}:
    put:
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/X'}}}
      responses: {'204': {description: ok}}
components:
  schemas:
    X:
      type: object
      description: annotations are dropped
      properties:
%s
'''

CASES = [
    ('a: {type: string, description: fine, example: b}', None),
    ('a: {oneOf: [{type: string}, {type: integer}]}', "keyword 'oneOf' is not enforced"),
    ('a: {type: number, exclusiveMinimum: true, minimum: 0}', "keyword 'exclusiveMinimum' is not enforced"),
    ('a: {type: string, description: cut here, oops (x)}', "keyword 'oops (x)' is not enforced"),
    ('on: {type: boolean}', 'is not a string (YAML reads on'),
    ("a: {$ref: '#/components/schemas/Y'}", "$ref '#/components/schemas/Y' does not name a schema"),
    ("a: {$ref: '#/components/schemas/X', minimum: 1}", '$ref with other checks beside it'),
    ('a: {type: text}', "type 'text' is not one of"),
    ('a: {type: object, required: [b]}', "required 'b' is not among the properties"),
]


def run(body):
    with tempfile.TemporaryDirectory() as d:
        doc = os.path.join(d, 'doc.yaml')
        out = os.path.join(d, 'out.c')
        with open(doc, 'w') as f:
            f.write(BASE % ('        ' + body))
        p = subprocess.run([sys.executable, SCRIPT, doc, 'sym', out], capture_output=True, text=True)
        text = open(out).read() if p.returncode == 0 else ''
        return p.returncode, p.stderr, text


def blob_of(c_text):
    parts = re.findall(r'^\t"(.*)";?$', c_text, re.M)
    return json.loads(''.join(parts).encode().decode('unicode_escape'))


def main():
    print('1..%d' % (len(CASES) + 1))
    n = 0
    for body, needle in CASES:
        n += 1
        rc, err, _ = run(body)
        ok = (rc == 0) if needle is None else (rc != 0 and needle in err)
        print('%s %d - %s%s' % ('ok' if ok else 'not ok', n, body, '' if ok else ' # got rc %d: %s' % (rc, err.strip())))
    n += 1
    rc, err, text = run('a: {type: string, description: gone}')
    blob = blob_of(text) if rc == 0 else {}
    ok = (rc == 0 and 'PUT /x/{id}' in blob['operations']
          and blob['operations']['PUT /x/{id}']['body_required'] is True
          and blob['operations']['PUT /x/{id}']['params'][0]['schema'] == {'type': 'integer'}
          and 'description' not in json.dumps(blob))
    print('%s %d - the blob has the operation, no annotations%s' % ('ok' if ok else 'not ok', n,
                                                                       '' if ok else ' # %r %s' % (blob, err)))


main()
