// Encrypted logical backups (docs/backup.md, "Encryption at rest"): pg_dump writes its
// custom format into a pipe that this process seals into dump.enc (the same
// AES-256-GCM format as every encrypted archive), and pg_restore reads it back through
// a pipe that this process fills as it opens each segment. The plaintext never touches
// the disk, and no byte of a segment reaches pg_restore before its tag is checked.
#pragma once

#include <exception>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "compressed_writer.hpp"
#include "process.hpp"

namespace warden {

inline constexpr const char* kSealedDumpFile = "dump.enc";

// Starts `argv` (pg_dump -Fc ...) with "-f /proc/self/fd/N" added and seals what it
// writes into `path` (created with O_EXCL) with the loaded backup secret.
class SealedDumpWriter {
public:
    SealedDumpWriter(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                     std::vector<int> inherit_fds, const std::string& path);
    ~SealedDumpWriter();  // on an error path: stops pg_dump, then the sealing thread
    SealedDumpWriter(const SealedDumpWriter&) = delete;
    SealedDumpWriter& operator=(const SealedDumpWriter&) = delete;
    // pg_dump's exit checked, then the sealed file's size and SHA-256 (fsynced).
    WrittenFile wait_checked();

private:
    void seal_loop(int fd);

    std::string path_;
    std::unique_ptr<RunningProcess> process_;
    std::thread thread_;
    WrittenFile written_;
    std::exception_ptr error_;
};

// Runs `argv` (pg_restore ..., no file name) with its standard input a pipe fed with the
// opened content of BACKUP_PATH/dump.enc: pg_restore reads a custom-format dump from
// stdin in one pass (a named pipe it would open twice). A segment that does not authenticate ends the
// pipe early and is the error reported, whatever the program said.
void run_on_sealed_dump(std::vector<std::string> argv, const std::string& backup_path,
                        const std::map<std::string, std::string>& env = {}, const std::string& stdout_path = "",
                        std::vector<int> inherit_fds = {});

}  // namespace warden
