// The HTTP server with fixed routes, for load tests of RelayHTTP alone: GET /healthz,
// POST /echo (a deferred handler answering on the loop thread, the model webhook routes
// use) and POST /echo-async (the same answer from an async task, for comparison).
import Foundation
import RelayHTTP

let listen = CommandLine.arguments.dropFirst().first.flatMap(HostAndPort.init(parsing:))
    ?? HostAndPort(host: "127.0.0.1", port: 0)
var router = Router()
router.add(.get, "/healthz", .immediate { _ in .json(.ok, "{\"status\":\"ok\"}") })
router.add(
    .post, "/echo",
    .deferred { request, responder in responder.respond(.json(.ok, "{\"result\":\"success\",\"bytes\":\(request.body.count)}")) })
router.add(.post, "/echo-async", .async { request in .json(.ok, "{\"result\":\"success\",\"bytes\":\(request.body.count)}") })
let server = try HTTPServer(configuration: .init(address: listen), router: router)
FileHandle.standardOutput.write(Data("listening on \(listen.host):\(server.port)\n".utf8))
while true { sleep(3600) }
