"""A disposable real REDCap in Docker, built from the site's own REDCap install zip.

One module per job:

* `redcap_zip` — inspect the install zip (version folder, completeness, zip-slip);
* `recipes` — the web image's Dockerfile, php.ini and build context, built via the SDK;
* `siteconfig` — ``database.php`` and the SQL that installs REDCap and adds a super-token admin;
* `lifecycle` — `DockerEnvironment`: network, volumes, DB and web containers, always removed;
* `readiness` — waiting for DB health, the web server and the API, with scrubbed log tails;
* `labels` / `sweep` — every object labelled with its run; removing runs and killed runs' leftovers;
* `teardown` — teardown at interpreter exit and on SIGTERM/SIGHUP;
* `daemon` — reaching the daemon and the images; `standin` — a stand-in image pair for tests.

`harness.targets.docker.DockerTarget` wraps this as the ``docker`` restore target.
"""

from harness.dockerenv.lifecycle import DockerEnvironment, Environment, EnvironmentSpec
from harness.dockerenv.redcap_zip import RedcapZip, inspect_zip

__all__ = ["DockerEnvironment", "Environment", "EnvironmentSpec", "RedcapZip", "inspect_zip"]
