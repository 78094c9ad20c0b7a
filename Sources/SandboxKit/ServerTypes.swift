public import HuskimoCore

/// The sandbox speaks through Shared's small HTTP server.
public typealias SandboxRequest = ServerRequest
public typealias SandboxResponse = ServerResponse
