// The HTTP server with two fixed routes, for load tests of RelayHTTP alone:
// GET /healthz (answered on the loop) and POST /echo (an async handler, as webhook routes
// are, answering with the size of the body it read).
import Foundation
import RelayHTTP

let listen = CommandLine.arguments.dropFirst().first.flatMap(HostAndPort.init(parsing:))
    ?? HostAndPort(host: "127.0.0.1", port: 0)
var router = Router()
router.add(.get, "/healthz", .immediate { _ in .json(.ok, "{\"status\":\"ok\"}") })
router.add(.post, "/echo", .async { request in .json(.ok, "{\"result\":\"success\",\"bytes\":\(request.body.count)}") })
let server = try HTTPServer(configuration: .init(address: listen), router: router)
FileHandle.standardOutput.write(Data("listening on \(listen.host):\(server.port)\n".utf8))
while true { sleep(3600) }
