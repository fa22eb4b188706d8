"""Stage fetch: put the Large Movie Review Dataset archive at OUT.

Downloads `fetch.url` (checked against `fetch.sha256`), or copies the local archive or
extracted folder named by `fetch.local`.
"""

from pathlib import Path

from elmo_imdb import cli
from elmo_imdb.imdb import fetch_archive


def main(args, params):
    p = params.fetch
    local = Path(p.local) if p.local else None
    fetch_archive(args.out, url=p.url, sha256=p.sha256, local=local)
    print(f"archive ready at {args.out}")


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("out", type=Path, help="where to write the .tar.gz")
    cli.run(main, parser.parse_args())
