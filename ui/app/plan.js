// The plan the page would run: typed as JSON or generated from a saved workflow, and what
// the API's validation says about it, each problem pointing at its step or field.

import { detailParts, get, post, query } from "./api.js";
import { t } from "./i18n.js";
import { useEffect, useState } from "./lib.js";

const EMPTY = { plan: null, estimate: null, text: "", problems: [], valid: false, workflowId: null };

function problemsOf(err) {
  if (!err.details || !err.details.length) return [{ step: "", text: err.message }];
  return err.details.map((d) => {
    const { field, step, what } = detailParts(d);
    return { step, text: step || !field ? what : `${field}: ${what}` };
  });
}

function parse(text) {
  const doc = JSON.parse(text);
  return doc && typeof doc === "object" && doc.plan ? doc.plan : doc;
}

export function usePlan(report) {
  const [state, setState] = useState(EMPTY);
  const [workflows, setWorkflows] = useState([]);
  const [loads, setLoads] = useState(0);

  useEffect(() => {
    get(`/workflows${query({ limit: 100 })}`)
      .then((page) => setWorkflows(page.items || []))
      .catch(report);
    // report is stable enough: a new one each render must not reload the list
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loads]);

  const editPlan = (text) => {
    let plan = null;
    let problems = [];
    if (text.trim()) {
      try {
        plan = parse(text);
        if (!plan || !Array.isArray(plan.steps)) throw new Error(t("planNeedsSteps"));
      } catch (err) {
        plan = null;
        problems = [{ step: "", text: `${t("badJson")}: ${err.message}` }];
      }
    }
    setState({ ...EMPTY, text, plan, problems });
  };

  // Validates the current plan; returns the problems as lines ([] when valid).
  const validate = async () => {
    if (!state.plan) {
      const problems = state.problems.length ? state.problems : [{ step: "", text: t("noPlan") }];
      setState({ ...state, problems, valid: false });
      return problems.map((p) => p.text);
    }
    try {
      await post("/plans/validate", { plan: state.plan });
      setState((s) => ({ ...s, problems: [], valid: true }));
      return [];
    } catch (err) {
      if (err.category !== "validation") report(err);
      const problems = problemsOf(err);
      setState((s) => ({ ...s, problems, valid: false }));
      return problems.map((p) => (p.step ? `${p.step}: ${p.text}` : p.text));
    }
  };

  const loadWorkflow = async (workflowId) => {
    try {
      const made = await post("/plans/generate", { workflow_id: workflowId });
      setState({ ...EMPTY, plan: made.plan, estimate: made.estimated_duration_ms, workflowId,
                 text: JSON.stringify(made.plan, null, 2), valid: true });
    } catch (err) {
      if (err.category !== "validation") report(err);
      setState({ ...EMPTY, problems: problemsOf(err) });
    }
  };

  return {
    state,
    workflows,
    validate,
    reload: () => setLoads((n) => n + 1),
    actions: { editPlan, validatePlan: validate, loadWorkflow },
  };
}
