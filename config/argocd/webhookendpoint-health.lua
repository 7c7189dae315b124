-- Argo CD health check for platform.mira.io/WebhookEndpoint.
-- Install it under resource.customizations.health.platform.mira.io_WebhookEndpoint
-- in argocd-cm (see docs/health-checks.md). It reads the same conditions as
-- kstatus and `kubectl wait --for=condition=Ready`.
local hs = {}
hs.status = "Progressing"
hs.message = "Waiting for the Mira controller to reconcile the endpoint"
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  return hs
end
local ready, stalled, reconciling = nil, nil, nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Stalled" then stalled = c end
  if c.type == "Reconciling" then reconciling = c end
end
if ready == nil then
  return hs
end
if ready.status == "False" and ready.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = ready.message
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. stalled.message
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.reason .. ": " .. reconciling.message
  return hs
end
if ready.status == "True" and ready.reason == "Degraded" then
  hs.status = "Degraded"
  hs.message = ready.message
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. ready.message
  return hs
end
hs.message = ready.reason .. ": " .. ready.message
return hs
