#!/usr/bin/env -S node --single-threaded-gc
// One node flag at most on the first line: scripts/install.sh makes it "#!/usr/bin/node FLAG",
// and Linux passes what follows the interpreter as a single argument. epmd-ng.service's
// ExecStart= repeats it.
// --single-threaded-gc: V8 collects on the main thread only, without helper threads for parallel
// scavenges and concurrent marking. For a heap of a few MB that costs 2-7 % less CPU per
// connection under load, and pauses stay short (README, Performance). V8's default heap sizes: a
// smaller young generation (--max-semi-space-size=4) lowers the RSS peak under a flood of lookups
// by about 16 MB but costs 3-4 µs of CPU per lookup.
import type { Command } from 'commander';
import { runClientCommand, runJsonQuery, type ClientOutcome } from './cli/client.js';
import { runStatus, type StatusOutput } from './cli/status.js';
import { OTP_USAGE, parseOtpArgs, type ClientCommand, type DaemonFlags } from './cli/otp-args.js';
import { resolveDaemonConfig, resolvePort } from './config.js';
import { daemonize, runDaemon } from './daemon.js';
import { createLogger, levelForDebug, type Level } from './log/logger.js';
import { VERSION } from './version.js';
import { takeOver } from './cli/take-over.js';
import * as socketSteps from './systemd/socket-steps.js';

/** One readable line on stderr and exit 1: how every bad flag or setting is reported. */
function fail(message: string, usage = false): never {
  process.stderr.write(`epmd-ng: ${message}\n${usage ? `${OTP_USAGE}\n` : ''}`);
  process.exit(1);
}

function finish(outcome: ClientOutcome): never {
  if (outcome.stderr) process.stderr.write(outcome.stderr);
  // All output in one write, as OTP's buffered stdio does (its names_stdout test relies on it).
  if (outcome.stdout.length > 0) process.stdout.write(outcome.stdout, () => process.exit(outcome.code));
  else process.exit(outcome.code);
  return undefined as never;
}

function clientPort(flagPort: number | undefined): number {
  const port = resolvePort(flagPort, process.env);
  if (!port.ok) fail(port.message);
  return port.value.port;
}

async function client(command: ClientCommand, flagPort: number | undefined, json = false): Promise<never> {
  const port = clientPort(flagPort);
  if (json && (command.name === 'names' || command.name === 'dump')) return finish(await runJsonQuery(command.name, port));
  return finish(await runClientCommand(command, port));
}

async function daemon(flags: DaemonFlags, argv: readonly string[]): Promise<void> {
  const resolved = resolveDaemonConfig(flags, process.env);
  if (!resolved.ok) fail(resolved.message);
  const config = resolved.value;
  if (config.daemonize) {
    await daemonize(argv);
    process.exit(0);
  }
  const log = await createLogger((config.logLevel as Level | undefined) ?? levelForDebug(config.debug), config.logFormat);
  const exit = await runDaemon(config, log);
  if (exit.message) log.error(exit.message);
  process.exit(exit.code);
}

/** OTP's single-dash syntax (`-port 4369 -names`), or no arguments at all: run exactly as `epmd` would. */
function isOtpSyntax(argv: readonly string[]): boolean {
  return argv.length === 0 || (argv[0]!.startsWith('-') && !argv[0]!.startsWith('--'));
}

function parsePortOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new Error(`invalid port "${value}" (expected 1..65535)`);
  return n;
}

/** The word-style commands; commander is loaded only for them, not for OTP syntax or the daemon. */
async function modernCli(): Promise<Command> {
  const { Command, Option } = await import('commander');
  const program = new Command('epmd-ng')
    .description(
      'Erlang Port Mapper Daemon, byte-compatible with OTP epmd.\n' +
        'OTP syntax works unchanged, e.g. `epmd-ng -port 4369 -names`, `epmd-ng -d -relaxed_command_check`.',
    )
    .version(VERSION, '-V, --version')
    // Every usage error is one line: `epmd-ng: unknown option '--x' (run epmd-ng --help for usage)`.
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `epmd-ng: ${s.slice(7).trimEnd()} (run epmd-ng --help for usage)\n` : s),
    });
  const portOption = () => new Option('-p, --port <port>', 'epmd port (default: ERL_EPMD_PORT or 4369)').argParser(parsePortOption);

  program
    .command('daemon')
    .description('run the daemon in the foreground (same as plain `epmd-ng`)')
    .addOption(portOption())
    .option('-a, --address <list>', 'addresses to listen on, comma separated, open to other hosts (default: every local address, for this host only)')
    .option('--relaxed-command-check', 'allow KILL with live nodes and STOP')
    .option('--packet-timeout <seconds>', 'idle limit for query connections', (v) => parsePositive(v, 'packet timeout'))
    .option('--max-connections <n>', 'simultaneous connection cap (default: from the open-file limit)', (v) => String(parsePositive(v, 'connection cap')))
    .option('--systemd', 'take listening sockets from systemd socket activation')
    .option('-d, --debug', 'more log detail; repeat for more', (_v, n: number) => n + 1, 0)
    .action(async (opts: Record<string, unknown>) => {
      if (opts.maxConnections) process.env.EPMD_NG_MAX_CONNECTIONS = opts.maxConnections as string;
      const flags: DaemonFlags = {
        debug: opts.debug as number,
        port: opts.port as number | undefined,
        address: opts.address as string | undefined,
        packetTimeout: opts.packetTimeout as number | undefined,
        daemonize: false,
        relaxedCommandCheck: Boolean(opts.relaxedCommandCheck),
        systemd: Boolean(opts.systemd),
      };
      await daemon(flags, []);
    });

  for (const what of ['names', 'dump'] as const) {
    program
      .command(what)
      .description(what === 'names' ? 'list the registered nodes' : 'list registered and old/unused entries (local only)')
      .addOption(portOption())
      .option('--json', 'print one JSON document instead of the epmd text')
      .action((opts: { port?: number; json?: boolean }) => client({ name: what }, opts.port, opts.json));
  }
  program
    .command('status')
    .allowExcessArguments(false)
    .description('how the daemon is doing: nodes, connections, requests, violations, fd store, snapshot, watchdog')
    .addOption(portOption())
    .addOption(new Option('--json', 'print the status document as JSON').conflicts('prometheus'))
    .addOption(new Option('--prometheus', 'print Prometheus text exposition format (node_exporter textfile collector)'))
    .action(async (opts: { port?: number; json?: boolean; prometheus?: boolean }) => {
      const output: StatusOutput = opts.json ? 'json' : opts.prometheus ? 'prometheus' : 'text';
      finish(await runStatus(clientPort(opts.port), output));
    });
  program
    .command('kill')
    .description('ask the daemon to exit (refused while nodes are registered, unless relaxed)')
    .addOption(portOption())
    .action((opts: { port?: number }) => client({ name: 'kill' }, opts.port));
  program
    .command('stop <name>')
    .description('unregister a node (needs a daemon started with -relaxed_command_check)')
    .addOption(portOption())
    .action((node: string, opts: { port?: number }) => client({ name: 'stop', node }, opts.port));
  program
    .command('socket-filter')
    .description("attach the this-host-only filter to the sockets systemd passes (epmd-ng-filter.service runs it)")
    .action(() => {
      const report = socketSteps.filterActivatedSockets();
      report.lines.forEach(sayStep);
      process.exit(report.code);
    });
  program
    .command('hand-over-sockets')
    .description("hold the listening sockets systemd passes open beside epmd-ng.socket (SO_REUSEPORT) until stopped, then close them to new connections and wait for their queues to empty (epmd-ng-handover.service runs it)")
    .action(async () => process.exit(await socketSteps.handOverSockets(untilStopped(), sayStep)));
  program
    .command('take-over')
    .description("record the nodes another epmd on the port serves as provisional entries in epmd-ng's snapshot (run before replacing it)")
    .addOption(portOption())
    .requiredOption('--state-dir <dir>', "epmd-ng's state directory (the package uses /var/lib/private/epmd-ng)")
    .action(async (opts: { port?: number; stateDir: string }) => {
      const port = resolvePort(opts.port, process.env);
      if (!port.ok) fail(port.message);
      finish(await takeOver(port.value.port, opts.stateDir));
    });
  program
    .command('started')
    .description('exit 0 if an epmd answers on the port, 1 otherwise')
    .addOption(portOption())
    .action((opts: { port?: number }) => client({ name: 'started' }, opts.port));
  return program;
}

/** One line of a socket step, for the journal. */
function sayStep(line: string): void {
  process.stderr.write(`epmd-ng: ${line}\n`);
}

/** Settles on SIGTERM (`systemctl stop`) or SIGINT, and keeps the process alive until then. */
function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = () => {
      clearInterval(keepAlive);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

function parsePositive(value: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new Error(`invalid ${what} "${value}" (expected a whole number above 0)`);
  return Number(value);
}

async function main(argv: string[]): Promise<void> {
  if (!isOtpSyntax(argv)) {
    await (await modernCli()).parseAsync(argv, { from: 'user' });
    return;
  }
  const parsed = parseOtpArgs(argv);
  switch (parsed.kind) {
    case 'usage':
      return fail(parsed.message, true);
    case 'client':
      return client(parsed.command, parsed.port);
    case 'daemon':
      return daemon(parsed.flags, argv);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`epmd-ng: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
