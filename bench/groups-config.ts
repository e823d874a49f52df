// The config of the benchmark's groups section (issue 14), in a module of its own so that
// a test can check it with the real config parser (test/bench/groups-config.test.ts).
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const hhmm = (minute: number): string => {
  const m = ((minute % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

/**
 * A config of 10 groups and 10 schedules: five in force now (local time, as the server
 * reads it), four not, and `flip`: in force every even minute of the day, so a window
 * boundary passes every minute of the run. The load generator (127.0.0.1)
 * falls in `loadgen` (an exact address beating 127.0.0.0/8), whose `bench` bundle blocks
 * whatever the time: the workloads' verdicts are those of the run without groups, while
 * every query goes through the group lookup and the (group, bundle) table.
 */
export function groupsConfig(): string {
  const now = new Date();
  const m = now.getHours() * 60 + now.getMinutes();
  const today = DAYS[now.getDay()]!;
  const notToday = DAYS.filter((d) => d !== today).join(',');
  const around = (before: number, after: number): string => `${hhmm(m - before)}-${hhmm(m + after)}`;
  const lines = [
    'group loadgen  127.0.0.1',
    'group loopback 127.0.0.0/8',
    'group lan      192.168.1.0/24 fd00:1::/64',
    'group admins   192.168.1.16 192.168.1.17',
    'group guests   192.168.50.0/24',
    'group corp     10.0.0.0/8',
    'group lab      10.1.0.0/16',
    'group carrier  100.64.0.0/10',
    'group vpn      172.16.0.0/12',
    'group others   127.0.0.2 127.0.0.3 ::1',
    // In force now:
    'schedule always daily 00:00-24:00',
    `schedule work   daily ${around(120, 120)}`,
    `schedule today  ${today} 00:00-24:00`,
    `schedule late   daily ${around(30, 90)}`,
    `schedule shift  daily ${around(240, 30)}`,
    // Not in force now:
    `schedule lunch  daily ${around(-180, 240)}`,
    `schedule night  daily ${around(-300, 420)}`,
    `schedule early  daily ${around(-500, 560)}`,
    // Other days, an hour from now: never in force now, even across midnight.
    `schedule weekend ${notToday} ${around(-60, 120)}`,
    // A boundary every minute.
    ...Array.from({ length: 720 }, (_, i) => `schedule flip daily ${hhmm(2 * i)}-${hhmm(2 * i + 1)}`),
    'block default  bench',
    'block loadgen  bench',
    'block loadgen  chat-a during flip',
    'block loadgen  chat-b during work',
    'allow loadgen  chat-c during lunch',
    'block loopback bench chat-a chat-b',
    'block lan      bench chat-a during always',
    'block admins   none',
    'block guests   bench chat-a chat-b',
    'allow guests   chat-a during early',
    'block corp     bench chat-b during late',
    'block lab      chat-c during today',
    'block carrier  bench during night',
    'block vpn      chat-a during weekend',
    'block others   chat-b during shift',
  ];
  return lines.join('\n') + '\n';
}
