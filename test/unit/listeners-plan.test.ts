// planAddresses: which sockets to listen on (spec §12, Q7, G-E F7). Pure: nothing is bound here.
import { describe, expect, it } from 'vitest';
import { MAX_LISTEN_SOCKETS, planAddresses, type AddressPlan, type ListenAddress } from '../../src/server/listeners.js';

function hosts(plan: AddressPlan): string[] {
  expect(plan.ok, plan.ok ? '' : plan.message).toBe(true);
  return plan.ok ? plan.addresses.map((a) => a.host) : [];
}

function plan(list: string | undefined): ListenAddress[] {
  const p = planAddresses(list);
  expect(p.ok, p.ok ? '' : p.message).toBe(true);
  return p.ok ? p.addresses : [];
}

function failure(list: string): string {
  let p: AddressPlan | undefined;
  expect(() => (p = planAddresses(list)), 'planAddresses must report, not throw').not.toThrow();
  expect(p?.ok).toBe(false);
  return p && !p.ok ? p.message : '';
}

const implicit = (host: string): ListenAddress => ({ host, optional: true, thisHostOnly: false, freeBind: false });
const listed = (host: string, freeBind = true): ListenAddress => ({ host, optional: false, thisHostOnly: false, freeBind });
const LOOPBACK = [implicit('127.0.0.1'), implicit('::1')];
const THIS_HOST = ['0.0.0.0', '::'].map((host) => ({ host, optional: true, thisHostOnly: true, freeBind: false }));

describe('no address list (spec §12.1; documented deviation: every local address, this host only)', () => {
  it('undefined -> 0.0.0.0 and ::, both this host only and optional (a kernel without IPv6 is not fatal)', () => {
    expect(plan(undefined)).toEqual(THIS_HOST);
  });

  it('empty string -> the same', () => expect(plan('')).toEqual(THIS_HOST));

  it('G-E F7: only separators ("   ,  ") -> the same', () => expect(plan('   ,  ')).toEqual(THIS_HOST));

  it('an explicit list is never this host only (OTP meaning: whoever reaches the addresses)', () => {
    const p = plan('0.0.0.0,::');
    expect(p.some((a) => a.thisHostOnly)).toBe(false);
  });
});

describe('address list (spec §12.2)', () => {
  it('G-E F7: "127.0.0.2" -> implicit loopback first, then 127.0.0.2 (other 127.x kept, required)', () => {
    expect(plan('127.0.0.2')).toEqual([...LOOPBACK, listed('127.0.0.2')]);
  });

  it('G-E F7: "127.0.0.1" alone -> just the two loopback sockets (token skipped)', () => {
    expect(plan('127.0.0.1')).toEqual(LOOPBACK);
  });

  it('G-E F7: "::1" alone -> just the two loopback sockets (token skipped)', () => {
    expect(plan('::1')).toEqual(LOOPBACK);
  });

  it('listed addresses are required (a bind failure is fatal), implicit ones optional', () => {
    const p = plan('10.1.2.3,2001:db8::1');
    expect(p.filter((a) => a.optional).map((a) => a.host)).toEqual(['127.0.0.1', '::1']);
    expect(p.filter((a) => !a.optional).map((a) => a.host)).toEqual(['10.1.2.3', '2001:db8::1']);
  });

  it('listed addresses bind before they are configured (IP_FREEBIND); implicit loopback does not', () => {
    const p = plan('10.1.2.3,2001:db8::1');
    expect(p.filter((a) => a.freeBind).map((a) => a.host)).toEqual(['10.1.2.3', '2001:db8::1']);
  });

  it('commas, spaces and runs of both separate tokens; order is kept', () => {
    expect(hosts(planAddresses('10.0.0.1,10.0.0.2 10.0.0.3 , ,10.0.0.4'))).toEqual([
      '127.0.0.1',
      '::1',
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.3',
      '10.0.0.4',
    ]);
  });

  it('leading and trailing separators are ignored (G-E F7 used a trailing comma)', () => {
    expect(hosts(planAddresses(',10.0.0.1,'))).toEqual(['127.0.0.1', '::1', '10.0.0.1']);
  });

  it('loopback tokens are skipped wherever they appear in the list', () => {
    expect(hosts(planAddresses('10.0.0.1,127.0.0.1,::1,10.0.0.2'))).toEqual(['127.0.0.1', '::1', '10.0.0.1', '10.0.0.2']);
  });
});

describe('unparsable addresses (spec §12.2: cannot parse IP address "X", exit 1)', () => {
  it('G-E F7: 999.1.1.1', () => {
    expect(failure('999.1.1.1')).toBe('cannot parse IP address "999.1.1.1"');
  });

  for (const bad of ['localhost', '1.2.3', '1.2.3.4.5', '[::1]', '1::2::3', '127.0.0.1:4369', 'fe80::1%eth0', 'fe80::1%1', '01.2.3.4']) {
    it(`${JSON.stringify(bad)} -> cannot parse IP address`, () => {
      expect(failure(bad)).toBe(`cannot parse IP address "${bad}"`);
    });
  }

  it('the first bad token is named, even after good ones', () => {
    expect(failure('10.0.0.1,bogus,alsobad')).toBe('cannot parse IP address "bogus"');
  });
});

describe('at most 16 sockets: 13 extra addresses (spec §12.2, G-E F7)', () => {
  const extra = (n: number) => Array.from({ length: n }, (_, i) => `127.0.1.${i + 2}`);

  it('MAX_LISTEN_SOCKETS is 16', () => expect(MAX_LISTEN_SOCKETS).toBe(16));

  it('13 extra addresses (space separated) -> 15 sockets, ok', () => {
    expect(hosts(planAddresses(extra(13).join(' '))).length).toBe(15);
  });

  it('14 extra addresses (comma separated, trailing comma) -> cannot listen on more than 16 IP addresses', () => {
    expect(failure(`${extra(14).join(',')},`)).toBe('cannot listen on more than 16 IP addresses');
  });

  it('loopback tokens do not count towards the limit', () => {
    expect(hosts(planAddresses(['127.0.0.1', '::1', ...extra(13)].join(','))).length).toBe(15);
  });
});

describe('Q7: a wildcard covers loopback of its family (documented deviation; OTP exits 0 on the bind conflict)', () => {
  it('0.0.0.0 drops the implicit 127.0.0.1 but keeps ::1', () => {
    expect(plan('0.0.0.0')).toEqual([implicit('::1'), listed('0.0.0.0', false)]);
  });

  it(':: drops the implicit ::1 but keeps 127.0.0.1', () => {
    expect(plan('::')).toEqual([implicit('127.0.0.1'), listed('::', false)]);
  });

  it('0.0.0.0 and :: together -> only the two wildcards', () => {
    expect(hosts(planAddresses('0.0.0.0 ::'))).toEqual(['0.0.0.0', '::']);
  });

  it('the long IPv6 wildcard 0:0:0:0:0:0:0:0 is recognised after normalisation', () => {
    expect(hosts(planAddresses('0:0:0:0:0:0:0:0'))).toEqual(['127.0.0.1', '::']);
  });
});

describe('IPv6 normalisation', () => {
  it('0:0:0:0:0:0:0:1 and 0000::0001 are ::1 and therefore skipped', () => {
    expect(plan('0:0:0:0:0:0:0:1')).toEqual(LOOPBACK);
    expect(plan('0000::0001')).toEqual(LOOPBACK);
  });

  it('upper case and leading zeros are written in canonical form', () => {
    expect(hosts(planAddresses('2001:DB8:0:0::0001'))).toEqual(['127.0.0.1', '::1', '2001:db8::1']);
  });

  it('the same address written two ways is listed once', () => {
    expect(hosts(planAddresses('2001:db8::1,2001:DB8:0::1'))).toEqual(['127.0.0.1', '::1', '2001:db8::1']);
  });

  it('a v4-mapped address is an IPv6 address of its own, not 127.0.0.1', () => {
    const h = hosts(planAddresses('::ffff:127.0.0.1'));
    expect(h.length).toBe(3);
    expect(h.slice(0, 2)).toEqual(['127.0.0.1', '::1']);
  });
});
