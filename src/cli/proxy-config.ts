import type { Command } from 'commander';
import { DEFAULT_UPSTREAM } from '../diagnose/proxy-config/options.ts';
import { generateProxyConfig, PROXY_KINDS, ProxyConfigError, type ProxyConfigInput } from '../diagnose/proxy-config/index.ts';
import { CliError } from './output.ts';

/**
 * `berth proxy-config <kind>`: prints a working reverse-proxy configuration for Berth, each setting
 * that matters with a one-line reason, and the matching Berth settings at the end.
 */
export function proxyConfigCommand(program: Command): void {
  program
    .command('proxy-config <kind>')
    .description(`print a reverse-proxy configuration for Berth (${PROXY_KINDS.join(', ')})`)
    .option('--external-url <url>', 'URL clients use, e.g. https://hub.example.com or https://hub.example.com:8443 (required)')
    .option('--upstream <url>', "Berth's address as the proxy reaches it", DEFAULT_UPSTREAM)
    .option('--tls-cert <file>', 'certificate with its full chain (default: a placeholder path)')
    .option('--tls-key <file>', 'private key of the certificate (default: a placeholder path)')
    .option('--listen <addr>', 'address and/or port to listen on, e.g. 443, 10.0.0.5:443, [::]:8443 (default: the external URL\'s port)')
    .option('--inner', 'this proxy sits behind another one that terminates TLS: pass X-Forwarded-Proto on instead of setting it')
    .action((kind: string, opts: ProxyConfigInput) => {
      try {
        process.stdout.write(generateProxyConfig(kind, opts));
      } catch (err) {
        if (err instanceof ProxyConfigError) throw new CliError(err.message);
        throw err;
      }
    });
}
