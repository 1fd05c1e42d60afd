// One page of a cursor-paged list (`{items, next_cursor}`), read again whenever `deps`
// change; a failed read is an empty page and a problem reported.

import { get } from "./api.js";
import { useEffect, useState } from "./lib.js";

export function usePage(path, deps, onProblem) {
  const [page, setPage] = useState({ items: [], next_cursor: null, loading: true });
  useEffect(() => {
    let alive = true;
    setPage((p) => ({ ...p, loading: true }));
    get(path)
      .then((data) => alive && setPage({ ...data, loading: false }))
      .catch((err) => {
        if (!alive) return;
        setPage({ items: [], next_cursor: null, loading: false });
        onProblem(err);
      });
    return () => { alive = false; };
    // the caller names what the path depends on
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return page;
}
