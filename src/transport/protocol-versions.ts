/**
 * The MCP protocol versions the SDK keeps on a Transport: the one it negotiated
 * (setProtocolVersion, SDK 1.x and 2.x) and the ones it accepts (setSupportedProtocolVersions,
 * SDK 2.x during connect). Both transports, PqmcpClientTransport and PqmcpServerTransport,
 * extend this class, so the SDK sees the same four members on each. Not exported from the
 * package by name: it appears in the published types only as their base.
 *
 * Sharp edges:
 * - pqmcp only keeps what the SDK tells it: it negotiates nothing and checks nothing here.
 * - The supported versions are copied and frozen: the SDK's array may change afterwards.
 */
export class McpProtocolVersions {
  private mcpProtocolVersion: string | undefined;
  private mcpSupportedVersions: readonly string[] | undefined;

  /** The MCP protocol version the SDK negotiated (set through setProtocolVersion). */
  get protocolVersion(): string | undefined {
    return this.mcpProtocolVersion;
  }

  setProtocolVersion(version: string): void {
    this.mcpProtocolVersion = version;
  }

  /** The protocol versions the SDK accepts (2.x calls this during connect). */
  get supportedProtocolVersions(): readonly string[] | undefined {
    return this.mcpSupportedVersions;
  }

  setSupportedProtocolVersions(versions: string[]): void {
    this.mcpSupportedVersions = Object.freeze([...versions]);
  }
}
