// One place that binds htm to Preact: every component imports html and the hooks from here.
import { h, render } from "preact";
import htm from "htm";

export { render };
export { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
export const html = htm.bind(h);
