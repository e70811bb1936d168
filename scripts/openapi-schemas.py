#!/usr/bin/python3
"""Turn an OpenAPI 3.0 document's schemas into a C file for src/schema/.

    scripts/openapi-schemas.py DOC.yaml SYMBOL OUT.c

The document stays the only source of truth for what an API accepts: the
build compiles this JSON into the program, and libcasulo-schema
(src/schema/schema.h) validates requests against it.  What is written:

    {"schemas": {NAME: SCHEMA, ...},            # components.schemas
     "operations": {"METHOD /path/{p}": {        # each path and method
         "body": SCHEMA or absent, "body_required": bool,
         "params": [{"name", "in": "path"|"query", "required", "schema"}]}}}

Every schema keyword must be one the C validator enforces (or a pure
annotation such as description): a keyword it would ignore stops the
build here, naming where it is, so that the document never promises a
check the program does not make.
"""
import json
import sys

import yaml

# Enforced by src/schema/schema.c.
CHECKED = {'type', 'properties', 'required', 'additionalProperties', 'enum', 'pattern', 'minimum', 'maximum',
           'minLength', 'maxLength', 'minItems', 'maxItems', 'items', '$ref', 'nullable'}
# Annotations: they change nothing a validator does.
ANNOTATIONS = {'description', 'example', 'default', 'title', 'readOnly', 'writeOnly', 'deprecated', 'format'}
TYPES = {'object', 'array', 'string', 'integer', 'number', 'boolean'}
REF_PREFIX = '#/components/schemas/'


def fail(where, msg):
    sys.exit('openapi-schemas: %s: %s' % (where, msg))


def check_schema(s, where, names):
    if not isinstance(s, dict):
        fail(where, 'a schema must be a mapping')
    for k in s:
        if k not in CHECKED and k not in ANNOTATIONS:
            fail(where, "keyword '%s' is not enforced by src/schema (supported: %s)" % (k, ', '.join(sorted(CHECKED))))
    if '$ref' in s:
        ref = s['$ref']
        if not isinstance(ref, str) or not ref.startswith(REF_PREFIX) or ref[len(REF_PREFIX):] not in names:
            fail(where, "$ref '%s' does not name a schema of components.schemas" % ref)
        if any(k in CHECKED for k in s if k != '$ref'):
            fail(where, '$ref with other checks beside it (they would be ignored)')
    t = s.get('type')
    if t is not None and t not in TYPES:
        fail(where, "type '%s' is not one of %s" % (t, ', '.join(sorted(TYPES))))
    for k, v in s.get('properties', {}).items():
        if not isinstance(k, str):
            fail(where, "property %r is not a string (YAML reads on, off, yes, no as booleans: quote it)" % k)
        check_schema(v, '%s.properties.%s' % (where, k), names)
    if isinstance(s.get('additionalProperties'), dict):
        check_schema(s['additionalProperties'], where + '.additionalProperties', names)
    if 'items' in s:
        check_schema(s['items'], where + '.items', names)
    for r in s.get('required', []):
        if r not in s.get('properties', {}):
            fail(where, "required '%s' is not among the properties" % r)


def strip(s):
    """The schema without its annotations (the program needs only the checks)."""
    if isinstance(s, dict):
        return {k: (v if k in ('enum', 'required') else strip(v)) if k != 'properties' else
                {pk: strip(pv) for pk, pv in v.items()} for k, v in s.items() if k not in ANNOTATIONS}
    return s


def main():
    if len(sys.argv) != 4:
        sys.exit('usage: openapi-schemas.py DOC.yaml SYMBOL OUT.c')
    doc_path, symbol, out = sys.argv[1:]
    try:
        with open(doc_path) as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        sys.exit('openapi-schemas: %s: %s' % (doc_path, str(e).replace('\n', ' ')))
    schemas = doc.get('components', {}).get('schemas', {})
    names = set(schemas)
    for name, s in schemas.items():
        check_schema(s, 'components.schemas.' + name, names)

    operations = {}
    for path, item in doc.get('paths', {}).items():
        shared = item.get('parameters', [])
        for method, op in item.items():
            if method == 'parameters':
                continue
            where = '%s %s' % (method.upper(), path)
            entry = {'params': []}
            for p in shared + op.get('parameters', []):
                if '$ref' in p:
                    ref = p['$ref']
                    prefix = '#/components/parameters/'
                    if not ref.startswith(prefix) or ref[len(prefix):] not in doc['components'].get('parameters', {}):
                        fail(where, "parameter $ref '%s' is not in components.parameters" % ref)
                    p = doc['components']['parameters'][ref[len(prefix):]]
                if p.get('in') not in ('path', 'query'):
                    continue  # headers and cookies are the server's own business
                schema = p.get('schema', {'type': 'string'})
                check_schema(schema, '%s parameter %s' % (where, p['name']), names)
                entry['params'].append({'name': p['name'], 'in': p['in'],
                                        'required': bool(p.get('required', p['in'] == 'path')), 'schema': schema})
            body = op.get('requestBody')
            if body is not None:
                content = body.get('content', {})
                if 'application/json' in content:
                    schema = content['application/json'].get('schema', {})
                    check_schema(schema, where + ' requestBody', names)
                    entry['body'] = schema
                    entry['body_required'] = bool(body.get('required', False))
            operations[where] = entry

    schemas = {name: strip(s) for name, s in schemas.items()}
    for entry in operations.values():
        if 'body' in entry:
            entry['body'] = strip(entry['body'])
        for p in entry['params']:
            p['schema'] = strip(p['schema'])
    blob = json.dumps({'schemas': schemas, 'operations': operations}, sort_keys=True, separators=(',', ':'))
    lines = ['/* Generated from %s by scripts/openapi-schemas.py: do not edit. */' % doc_path.split('/')[-1],
             '#include <stddef.h>', '',
             'extern const char %s[];' % symbol,
             'extern const size_t %s_len;' % symbol, '',
             'const char %s[] =' % symbol]
    for i in range(0, len(blob), 100):
        lines.append('\t"%s"' % blob[i:i + 100].replace('\\', '\\\\').replace('"', '\\"'))
    lines[-1] += ';'
    lines.append('const size_t %s_len = sizeof(%s) - 1;' % (symbol, symbol))
    with open(out, 'w') as f:
        f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
