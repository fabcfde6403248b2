import FoundationEssentials
import RelayHTTP

#if canImport(Glibc)
import Glibc
#endif

/// `happyrelay healthcheck`: asks the relay that the same settings describe (`--listen`,
/// `HAPPYRELAY_LISTEN`) for `GET /healthz`, for container health checks that follow the
/// listen setting. With `--tls-cert` it only checks that the port accepts connections (the
/// certificate names a host, not the loopback address the check dials).
enum HealthCheck {
    static func run(_ arguments: [String], environment: [String: String]) -> Int32 {
        let settings: ServeSettings
        do {
            settings = try ServeSettings.parse(arguments, environment: environment)
        } catch {
            return ServeCommand.failed("happyrelay healthcheck: \(error.message)", code: error.exitCode)
        }
        // A wildcard address is reached on the loopback of the same family.
        let host = settings.listen.host == "0.0.0.0" ? "127.0.0.1" : settings.listen.host == "::" ? "::1" : settings.listen.host
        let plain = settings.tlsCertificate == nil
        let result = check(host: host, port: settings.listen.port, request: plain)
        switch result {
        case .success(let status):
            guard !plain || status == 200 else { return ServeCommand.failed("happyrelay healthcheck: /healthz answered \(status)", code: 1) }
            return 0
        case .failure(let reason):
            return ServeCommand.failed("happyrelay healthcheck: \(host):\(settings.listen.port): \(reason.reason)", code: 1)
        }
    }

    struct Failure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Connects (3 s at most each way); with `request`, sends `GET /healthz` and returns the
    /// status, otherwise 0 once connected.
    static func check(host: String, port: Int, request: Bool) -> Result<Int, Failure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let info = list else { return .failure(Failure("not an address")) }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Failure(String(cString: strerror(errno)))) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else { return .failure(Failure(String(cString: strerror(errno)))) }
        guard request else { return .success(0) }
        let text = Array("GET /healthz HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
        guard text.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == text.count else {
            return .failure(Failure("cannot send: \(String(cString: strerror(errno)))"))
        }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 12 else { return .failure(Failure("no answer")) }
        // "HTTP/1.1 200 OK"
        let line = String(decoding: buffer[0..<count], as: UTF8.self)
        guard line.hasPrefix("HTTP/1."), let status = Int(line.dropFirst(9).prefix(3)) else { return .failure(Failure("not an HTTP answer")) }
        return .success(status)
    }
}
