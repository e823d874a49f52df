// SlotMap: a Map for what is in flight, whose values live in slots emptied on delete (see
// src/stages/forward/slot-map.ts for why). It must behave as the Map it replaces.
import t from 'tap';
import { SlotMap } from '../../../src/stages/forward/slot-map.js';

t.test('get, set, has, delete and size as a Map', async (t) => {
  const m = new SlotMap<number, string>();
  t.equal(m.size, 0);
  t.equal(m.get(1), undefined);
  m.set(1, 'a');
  m.set(2, 'b');
  t.equal(m.size, 2);
  t.equal(m.get(1), 'a');
  t.ok(m.has(2));
  m.set(1, 'a2');
  t.equal(m.size, 2, 'setting a key again replaces its value');
  t.equal(m.get(1), 'a2');
  t.equal(m.delete(1), true);
  t.equal(m.delete(1), false, 'a key deleted twice');
  t.notOk(m.has(1));
  t.equal(m.get(1), undefined);
  t.equal(m.size, 1);
});

t.test('a deleted entry leaves nothing behind: its slot is emptied and reused', async (t) => {
  const m = new SlotMap<string, { n: number }>();
  for (let i = 0; i < 1000; i++) {
    m.set(`k${i}`, { n: i });
    if (i >= 10) m.delete(`k${i - 10}`);
  }
  t.equal(m.size, 10);
  const slots = (m as unknown as { slots: unknown[] }).slots;
  t.ok(slots.length <= 11, `slots grow to the most entries at once, not with every insertion (${slots.length})`);
  t.equal(slots.filter((v) => v !== undefined).length, 10, 'only the live entries are held');
  t.same(m.values().map((v) => v.n), [990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
});

t.test('forEach visits every entry and allows deleting the one it is given', async (t) => {
  const m = new SlotMap<number, number>();
  for (let i = 0; i < 20; i++) m.set(i, i * 10);
  const seen: number[] = [];
  m.forEach((value, key) => {
    seen.push(value);
    if (key % 2 === 0) m.delete(key);
  });
  t.equal(seen.length, 20);
  t.equal(m.size, 10);
  t.same(m.values(), [10, 30, 50, 70, 90, 110, 130, 150, 170, 190]);
  m.clear();
  t.equal(m.size, 0);
  t.same(m.values(), []);
  m.set(5, 50);
  t.equal(m.get(5), 50, 'usable after clear');
});
