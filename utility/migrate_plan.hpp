// warden migrate plan, and the plan `up` checks first: each pending migration run as `up`
// would run it, in one transaction that is rolled back, judged by warden.migration_policy.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "migrate_common.hpp"

namespace warden::cli::migrate {

struct MigrationPlan {
    const MigrationFile* file;
    nlohmann::json statements;  // warden._plan_migration's answer
    std::string verdict;        // ok | warn | refuse
};

// The pending migrations of the folder, in order, up to --target.
std::vector<const MigrationFile*> pending_files(const std::vector<MigrationFile>& files,
                                                const std::vector<VerifyRow>& rows);

// Plans the pending migrations in one transaction that is rolled back: each is planned,
// then applied inside it so that the next one sees its tables. run = false judges their
// text only (nothing runs).
std::vector<MigrationPlan> plan_pending(Connection& conn,
                                        const std::vector<const MigrationFile*>& pending, bool run);

nlohmann::json plan_json(const std::vector<MigrationPlan>& plans);

// Before `up` applies anything: plans the pending migrations when any of them names a
// table with rows (otherwise nothing can wait for them), prints the warnings on stderr and
// throws when the policy refuses a statement.
void check_plan_before_up(Connection& conn, const std::vector<const MigrationFile*>& pending);

int run_plan();

}  // namespace warden::cli::migrate
