public import Shared

/// The sandbox speaks through Shared's small HTTP server.
public typealias SandboxRequest = ServerRequest
public typealias SandboxResponse = ServerResponse
