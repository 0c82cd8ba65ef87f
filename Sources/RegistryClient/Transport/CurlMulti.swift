import CCurl
import Foundation
import NIOCore
import OCI
import Synchronization

/// The only place Archway touches libcurl: one multi handle driven by its own thread.
///
/// Other threads never call libcurl; they queue a command and wake the loop with
/// `curl_multi_wakeup`. The multi handle keeps the connection cache, so connections to an
/// upstream are reused across transfers. Raw C pointers live only on the loop thread, which is
/// why this type, and no other, is `@unchecked Sendable`.
final class CurlMulti: @unchecked Sendable {
    struct Options: Sendable, Hashable {
        var connectTimeout: Duration = .seconds(10)
        /// A transfer that moves less than one byte per second for this long is aborted.
        var stallTimeout: Duration = .seconds(30)
        var userAgent = "archway/0.1"
    }

    private enum Command {
        case add(Transfer, Options)
        case resume(Transfer)
        case cancel(Transfer)
    }

    private struct Active {
        let transfer: Transfer
        let headerList: UnsafeMutablePointer<curl_slist>?
        let errorBuffer: UnsafeMutablePointer<CChar>
    }

    static let shared = CurlMulti()

    private let multi: UnsafeMutableRawPointer
    private let commands = Mutex<[Command]>([])
    /// Loop thread only.
    private var active: [UnsafeMutableRawPointer: Active] = [:]
    private var easyByTransfer: [ObjectIdentifier: UnsafeMutableRawPointer] = [:]

    private init() {
        curl_global_init(Int(CURL_GLOBAL_ALL))
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        archway_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32)
        let thread = Thread { [self] in self.run() }
        thread.name = "archway-curl"
        thread.start()
    }

    func start(_ transfer: Transfer, options: Options) {
        send(.add(transfer, options))
    }

    func resume(_ transfer: Transfer) {
        send(.resume(transfer))
    }

    func cancel(_ transfer: Transfer) {
        send(.cancel(transfer))
    }

    private func send(_ command: Command) {
        commands.withLock { $0.append(command) }
        curl_multi_wakeup(multi)
    }

    // MARK: - Loop thread

    private func run() {
        var running: Int32 = 0
        while true {
            for command in commands.withLock({ commands in
                defer { commands = [] }
                return commands
            }) {
                switch command {
                case .add(let transfer, let options): add(transfer, options)
                case .resume(let transfer):
                    if let easy = easyByTransfer[ObjectIdentifier(transfer)] {
                        curl_easy_pause(easy, 0)  // CURLPAUSE_CONT
                    }
                case .cancel(let transfer):
                    if let easy = easyByTransfer[ObjectIdentifier(transfer)] {
                        finish(easy, error: CancellationError())
                    }
                }
            }
            curl_multi_perform(multi, &running)
            var easy: UnsafeMutableRawPointer?
            var result = CURLE_OK
            while archway_multi_next_done(multi, &easy, &result) != 0, let done = easy {
                if result == CURLE_OK {
                    finish(done, error: nil)
                } else {
                    let message = active[done].map { String(cString: $0.errorBuffer) } ?? ""
                    var text = message.isEmpty ? String(cString: curl_easy_strerror(result)) : message
                    if let refused = active[done]?.transfer.refusedAddress.withLock({ $0 }) {
                        text =
                            "refused to connect to \(refused): a redirect or token realm may not reach this machine, loopback or link-local addresses"
                    }
                    finish(done, error: TransportError(code: Int32(result.rawValue), message: text))
                }
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }

    private func add(_ transfer: Transfer, _ options: Options) {
        guard let easy = curl_easy_init() else {
            transfer.complete(TransportError(code: 0, message: "curl_easy_init failed"))
            return
        }
        let request = transfer.request
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        var headerList: UnsafeMutablePointer<curl_slist>?
        for field in request.headers {
            headerList = curl_slist_append(headerList, "\(field.name): \(field.value)")
        }
        if request.headers["Accept"] == nil {
            headerList = curl_slist_append(headerList, "Accept:")  // no default */*: forward what the client sent
        }
        if request.body != nil {
            headerList = curl_slist_append(headerList, "Expect:")  // no round trip before the body
        }
        let context = Unmanaged.passUnretained(transfer).toOpaque()

        archway_easy_setopt_string(easy, CURLOPT_URL, request.url)
        archway_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        archway_easy_setopt_string(easy, CURLOPT_USERAGENT, options.userAgent)
        archway_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)
        archway_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        archway_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        archway_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        archway_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        archway_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 64 << 10)
        archway_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeout.totalMilliseconds))
        archway_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        archway_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, Int(options.stallTimeout.totalMilliseconds / 1000)))
        if let total = request.totalTimeout {
            archway_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(total.totalMilliseconds))
        }
        switch request.method {
        case .get: break
        case .head: archway_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        case .put:
            archway_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
            archway_easy_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body?.readableBytes ?? 0))
        case .post:
            archway_easy_setopt_long(easy, CURLOPT_POST, 1)
            archway_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body?.readableBytes ?? 0))
        case .delete: archway_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, "DELETE")
        }
        if request.method == .put || request.method == .post {
            archway_easy_setopt_data_callback(easy, CURLOPT_READFUNCTION) { buffer, size, count, context in
                guard let buffer, let context else { return 0 }
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                return transfer.sendBody(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
            }
            archway_easy_setopt_pointer(easy, CURLOPT_READDATA, context)
            archway_easy_setopt_seek_callback(easy) { context, offset, origin in
                guard let context, origin == SEEK_SET else { return 2 }  // CURL_SEEKFUNC_CANTSEEK
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                return transfer.rewindBody(to: Int(offset)) ? 0 : 1  // CURL_SEEKFUNC_OK : _FAIL
            }
            archway_easy_setopt_pointer(easy, CURLOPT_SEEKDATA, context)
        }
        archway_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION) { buffer, size, count, context in
            let length = size * count
            guard let buffer, let context else { return length }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: buffer, count: length)
            transfer.receivedHeaderLine(String(decoding: bytes, as: UTF8.self))
            return length
        }
        archway_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context)
        archway_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION) { buffer, size, count, context in
            let length = size * count
            guard let buffer, let context else { return length }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let accepted = transfer.receivedBody(UnsafeRawBufferPointer(start: buffer, count: length))
            return accepted ? length : Int(CURL_WRITEFUNC_PAUSE)
        }
        archway_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        if request.refusesInternalAddresses {
            // Checked on the address curl actually connected to, so DNS cannot steer around it.
            archway_easy_setopt_prereq_callback(easy) { context, primary, local, _, _ in
                guard let context, let primary else { return 1 }  // CURL_PREREQFUNC_ABORT
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                let address = String(cString: primary)
                guard InternalAddress.isInternal(address, local: local.map { String(cString: $0) }) else { return 0 }
                transfer.refusedAddress.withLock { $0 = address }
                return 1
            }
            archway_easy_setopt_pointer(easy, CURLOPT_PREREQDATA, context)
        }

        active[easy] = Active(transfer: transfer, headerList: headerList, errorBuffer: errorBuffer)
        easyByTransfer[ObjectIdentifier(transfer)] = easy
        curl_multi_add_handle(multi, easy)
    }

    private func finish(_ easy: UnsafeMutableRawPointer, error: (any Error)?) {
        guard let entry = active.removeValue(forKey: easy) else { return }
        easyByTransfer[ObjectIdentifier(entry.transfer)] = nil
        curl_multi_remove_handle(multi, easy)
        curl_easy_cleanup(easy)
        curl_slist_free_all(entry.headerList)
        entry.errorBuffer.deallocate()
        entry.transfer.complete(error)
    }
}
