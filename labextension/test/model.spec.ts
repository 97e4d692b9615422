import {
  APPROVAL_MARKER,
  APPROVAL_REPLIES,
  formatLastUse,
  isCapsuleCell,
  escapeShown,
  parseApprovalPrompt,
  parseApprovalRequest,
  parseSnapshot,
  RegistryModel,
  statusText
} from '../src/model';

/** Reply metadata as ipycap/ipython/panel.py sends it. */
function reply(overrides: { [key: string]: unknown } = {}) {
  return {
    ipycap: {
      protocol: 1,
      mode: 'kernel',
      seq: 7,
      grants: [
        {
          id: 'cap-1',
          kind: 'read',
          target: '/work/data',
          granted_by: 'config',
          scope: 'session',
          uses: 2,
          last_use: 1000,
          state: 'active'
        },
        {
          id: 'cap-2',
          kind: 'import',
          target: 'json',
          granted_by: 'default',
          scope: 'session',
          uses: 1,
          last_use: null,
          state: 'active'
        },
        {
          id: 'cap-3',
          kind: 'write',
          target: '/work/out',
          granted_by: 'prompt',
          scope: 'session',
          uses: 0,
          last_use: null,
          state: 'revoked'
        }
      ],
      refusals: [
        {
          time: 990,
          kind: 'import',
          target: 'os',
          what: "import of 'os': it is in c.CapsulePolicy.denied_imports",
          layer: 'builtins',
          how: null
        },
        {
          time: 995,
          kind: 'read',
          target: '/etc/passwd',
          what: 'read access to /etc/passwd was not granted to this capsule',
          layer: 'builtins',
          how: '%capsule request read /etc/passwd (the human is asked to approve)'
        }
      ],
      refused_total: 2,
      confinement: 'OS confinement: not applied',
      ...overrides
    }
  };
}

describe('parseSnapshot', () => {
  it('reads the kernel snapshot', () => {
    const snap = parseSnapshot(reply())!;
    expect(snap.mode).toBe('kernel');
    expect(snap.grants.map(g => [g.id, g.grantedBy, g.state])).toEqual([
      ['cap-1', 'config', 'active'],
      ['cap-2', 'default', 'active'],
      ['cap-3', 'prompt', 'revoked']
    ]);
    expect(snap.grants[0].lastUse).toBe(1000);
    expect(snap.refusals[1].how).toContain('%capsule request read /etc/passwd');
    expect(snap.refusals[0].how).toBeNull();
    expect(snap.refusedTotal).toBe(2);
    expect(snap.result).toBeNull();
  });

  it('returns null without an ipycap snapshot', () => {
    expect(parseSnapshot({})).toBeNull();
    expect(parseSnapshot(null)).toBeNull();
    expect(parseSnapshot({ ipycap: 'x' })).toBeNull();
    expect(parseSnapshot({ ipycap: { protocol: 2, grants: [] } })).toBeNull();
  });

  it('drops or defaults fields of the wrong type, never granting more', () => {
    const snap = parseSnapshot(
      reply({
        grants: [
          { id: 'cap-9', kind: 'read', target: { toString: 'x' }, state: 'ACTIVE', uses: '5' },
          { id: 5, kind: 'read' },
          'cap-10',
          null
        ],
        refusals: [{ what: 42, how: ['x'] }, 7],
        refused_total: 'many',
        mode: 'root'
      })
    )!;
    expect(snap.grants).toHaveLength(1);
    expect(snap.grants[0]).toMatchObject({ id: 'cap-9', target: '', uses: 0, state: 'revoked' });
    expect(snap.refusals).toEqual([
      { time: null, kind: '', target: '', what: '', layer: '', how: null }
    ]);
    expect(snap.refusedTotal).toBe(0);
    expect(snap.mode).toBe('extension');
  });

  it('keeps markup in names as plain strings', () => {
    const name = '<img src=x onerror=alert(1)>';
    const snap = parseSnapshot(reply({ grants: [{ id: 'cap-1', kind: 'import', target: name, state: 'active' }] }))!;
    expect(snap.grants[0].target).toBe(name);
  });

  it('reads the result of a revoke request and a kernel-side error', () => {
    const snap = parseSnapshot(reply({ result: { revoke: 'cap-1', ok: true, message: 'revoked cap-1' } }))!;
    expect(snap.result).toEqual({ revoke: 'cap-1', ok: true, message: 'revoked cap-1' });
    const failed = parseSnapshot({ ipycap: { protocol: 1, mode: 'kernel', error: 'boom' } })!;
    expect(failed.error).toBe('boom');
    expect(statusText(failed)).toBe('capsule · registry unavailable');
  });
});

describe('statusText', () => {
  it('counts active grants and every refusal', () => {
    expect(statusText(parseSnapshot(reply()))).toBe('capsule · 2 grants · 2 refused');
    const one = parseSnapshot(
      reply({ grants: [{ id: 'cap-1', kind: 'read', state: 'active' }], refused_total: 1 })
    );
    expect(statusText(one)).toBe('capsule · 1 grant · 1 refused');
    expect(statusText(null)).toBe('');
  });
});

describe('RegistryModel', () => {
  it('follows execute replies and tells listeners', () => {
    const model = new RegistryModel();
    const seen: string[] = [];
    model.onChange(() => seen.push(model.statusText));
    expect(model.update('ok', {})).toBe(false); // no ipycap yet: nothing to say
    expect(model.update('ok', reply())).toBe(true);
    expect(model.present).toBe(true);
    expect(model.activeGrants.map(g => g.id)).toEqual(['cap-1', 'cap-2']);
    expect(model.recentRefusals[0].target).toBe('/etc/passwd'); // newest first
    expect(model.update('aborted', {})).toBe(false); // a skipped request says nothing
    expect(model.present).toBe(true);
    expect(model.update('ok', {})).toBe(true); // %unload_ext: gone
    expect(model.present).toBe(false);
    expect(model.snapshot).toBeNull();
    expect(seen).toEqual(['capsule · 2 grants · 2 refused', '']);
  });

  it('builds revoke requests for active grants only', () => {
    const model = new RegistryModel();
    model.update('ok', reply());
    expect(model.revokeRequest('cap-1')).toEqual({ ipycap: { revoke: 'cap-1' } });
    expect(() => model.revokeRequest('cap-3')).toThrow('not an active capability');
    expect(() => model.revokeRequest('/work/data')).toThrow();
  });

  it('clears on restart', () => {
    const model = new RegistryModel();
    model.update('ok', reply());
    model.clear();
    expect(model.snapshot).toBeNull();
    expect(model.mode).toBeNull();
  });
});

describe('capsule cells', () => {
  it('marks every cell of the capsule kernel and %%capsule cells of the extension', () => {
    expect(isCapsuleCell('x = 1', 'kernel')).toBe(true);
    expect(isCapsuleCell('%%capsule --allow-read data\nopen("data/a")', 'extension')).toBe(true);
    expect(isCapsuleCell('\n  %%capsule\n1', 'extension')).toBe(true);
    expect(isCapsuleCell('%%capsules\n1', 'extension')).toBe(false);
    expect(isCapsuleCell('x = 1\n%%capsule', 'extension')).toBe(false);
    expect(isCapsuleCell('%%capsule', null)).toBe(false);
  });
});

describe('formatLastUse', () => {
  it('says how long ago', () => {
    expect(formatLastUse(null, 100)).toBe('never');
    expect(formatLastUse(95, 100)).toBe('5s ago');
    expect(formatLastUse(100 - 125, 100)).toBe('2 min ago');
    expect(formatLastUse(100 - 7200, 100)).toBe('2 h ago');
    expect(formatLastUse(100 - 3 * 86400, 100)).toBe('3 d ago');
  });
});

describe('parseApprovalPrompt', () => {
  it('reads the kernel approval prompt', () => {
    const prompt =
      APPROVAL_MARKER +
      'Allow read access to data/notes.txt (grant: read data/)? [y]es / [n]o / [a]lways this session';
    expect(parseApprovalPrompt(prompt, false)).toEqual({
      question: 'Allow read access to data/notes.txt (grant: read data/)?',
      grant: 'read data/'
    });
    expect(parseApprovalPrompt(APPROVAL_MARKER + 'Cell [3] asks for import of x. Allow? [y/N] ', false))
      .toEqual({ question: 'Cell [3] asks for import of x. Allow?', grant: null });
  });

  it('leaves every other prompt to the stdin box', () => {
    expect(parseApprovalPrompt('capsule asks: ipycap-approval: Allow? ', false)).toBeNull();
    expect(parseApprovalPrompt(' ipycap-approval: Allow?', false)).toBeNull();
    expect(parseApprovalPrompt('Name: ', false)).toBeNull();
    expect(parseApprovalPrompt(APPROVAL_MARKER + 'Allow?', true)).toBeNull(); // a password box
    expect(parseApprovalPrompt(undefined, false)).toBeNull();
  });

  it('answers y, a or n', () => {
    expect(APPROVAL_REPLIES).toEqual({ once: 'y', session: 'a', deny: 'n' });
  });
});

describe('parseApprovalRequest', () => {
  const prompt =
    APPROVAL_MARKER +
    'Allow read access to \'notes\\x28grant: read notes.txt\\x29.txt\' ' +
    '(grant: read notes\\x28grant: read notes.txt\\x29.txt)? [y]es / [n]o / [a]lways this session';

  it('takes the grant from the structured fields, not the prompt text', () => {
    const request = parseApprovalRequest({
      prompt,
      password: false,
      ipycap_approval: { kind: 'read', grant: '/work/notes (grant: read notes.txt).txt' }
    });
    expect(request).toEqual({
      question: prompt.slice(APPROVAL_MARKER.length).replace(/\s*\[[^\]]*\][^?]*$/, ''),
      grant: 'read /work/notes (grant: read notes.txt).txt',
      kind: 'read'
    });
  });

  it('escapes what could reorder or word the grant shown', () => {
    const request = parseApprovalRequest({
      prompt: APPROVAL_MARKER + 'Allow write access? [y/N]',
      password: false,
      ipycap_approval: { kind: 'write', grant: 'out/\u202etxt.exe\u2066\x1b[2J\u3164\uff08\\u202e' }
    });
    expect(request?.grant).toBe('write out/\\u202etxt.exe\\u2066\\x1b[2J\\u3164\\uff08\\x5cu202e');
    expect(escapeShown('données/日本')).toBe('données/日本'); // letters of other scripts stay
  });

  it('still needs the kernel marker, and falls back to the text without fields', () => {
    const fields = { kind: 'read', grant: '/etc' };
    expect(parseApprovalRequest({ prompt: 'capsule asks: Allow?', ipycap_approval: fields })).toBeNull();
    expect(
      parseApprovalRequest({ prompt: APPROVAL_MARKER + 'Allow?', password: true, ipycap_approval: fields })
    ).toBeNull();
    expect(
      parseApprovalRequest({ prompt: APPROVAL_MARKER + 'Allow x (grant: import x)? [y/N]' })
    ).toEqual({ question: 'Allow x (grant: import x)?', grant: 'import x' });
    for (const bad of [null, 'read /etc', { kind: 'read' }, { kind: 'READ x', grant: '/' }, { kind: 1, grant: '/' }]) {
      expect(
        parseApprovalRequest({ prompt: APPROVAL_MARKER + 'Allow? [y/N]', ipycap_approval: bad })
      ).toEqual({ question: 'Allow?', grant: null });
    }
  });
});
