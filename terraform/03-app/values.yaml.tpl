# Helm values for chart langfuse 1.5.19, rendered by templatefile() in helm.tf.
# No secret here, not even as a template variable: every secret is read by the pods from the
# Secret ${secret_name} that 03-app creates (secretKeyRef, existingSecret; decision 20).
global:
  # Valkey's PVC on 03-app's encrypted gp3 class (Bitnami common reads this); ClickHouse has its
  # own volume (clickhouse.persistence below).
  defaultStorageClass: ${jsonencode(storage_class)}

langfuse:
  salt:
    secretKeyRef:
      name: ${jsonencode(secret_name)}
      key: salt
  encryptionKey:
    secretKeyRef:
      name: ${jsonencode(secret_name)}
      key: encryption-key
  nextauth:
    url: "http://localhost:3000"
    secret:
      secretKeyRef:
        name: ${jsonencode(secret_name)}
        key: nextauth-secret
  features:
    # AUTH_DISABLE_SIGNUP=true in the pods, through the chart's own switch.
    signUpDisabled: true
    # No usage statistics sent out of the cluster.
    telemetryEnabled: false
  # Web and worker: the images' non-root user, no privilege escalation, no capabilities, the
  # runtime's default seccomp profile (Pod Security "restricted"). The root filesystem stays
  # writable: Next.js writes its cache under the app folder.
  podSecurityContext:
    runAsNonRoot: true
    runAsUser: ${app_uid}
    runAsGroup: ${app_uid}
    seccompProfile:
      type: RuntimeDefault
  securityContext:
    runAsNonRoot: true
    runAsUser: ${app_uid}
    runAsGroup: ${app_uid}
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  # Web and worker: the digest of ${secret_name}, so a changed secret rolls the pods (helm.tf).
  pod:
    annotations:
      checksum/langfuse-secrets: ${jsonencode(secret_checksum)}
  serviceAccount:
    create: true
    annotations:
      # IRSA: the pods get S3 credentials from this role, no static keys (FR12, NFR4).
      eks.amazonaws.com/role-arn: ${jsonencode(irsa_role_arn)}
  # Web and worker. The chart has no secret reference for postgresql.directUrl (story 3.2).
  additionalEnv:
    - name: DIRECT_URL
      valueFrom:
        secretKeyRef:
          name: ${jsonencode(secret_name)}
          key: direct-url
  web:
    resources:
      requests:
        cpu: 250m
        memory: 768Mi
      limits:
        memory: 1536Mi
    livenessProbe:
      # First boot runs hundreds of migrations; do not kill the pod half-way (decision 13).
      initialDelaySeconds: 240
      failureThreshold: 10
    readinessProbe:
      initialDelaySeconds: 30
    pod:
      additionalEnv:
        # Headless initialization: user, organization, project and API keys (FR14, decision 5).
        - name: LANGFUSE_INIT_ORG_ID
          value: ${jsonencode(org_id)}
        - name: LANGFUSE_INIT_ORG_NAME
          value: ${jsonencode(org_name)}
        - name: LANGFUSE_INIT_PROJECT_ID
          value: ${jsonencode(project_id)}
        - name: LANGFUSE_INIT_PROJECT_NAME
          value: ${jsonencode(project_name)}
        - name: LANGFUSE_INIT_PROJECT_PUBLIC_KEY
          value: ${jsonencode(project_public_key)}
        - name: LANGFUSE_INIT_PROJECT_SECRET_KEY
          valueFrom:
            secretKeyRef:
              name: ${jsonencode(secret_name)}
              key: project-secret-key
        - name: LANGFUSE_INIT_USER_EMAIL
          value: ${jsonencode(admin_email)}
        - name: LANGFUSE_INIT_USER_NAME
          value: ${jsonencode(admin_name)}
        - name: LANGFUSE_INIT_USER_PASSWORD
          valueFrom:
            secretKeyRef:
              name: ${jsonencode(secret_name)}
              key: admin-password
  worker:
    resources:
      requests:
        cpu: 250m
        memory: 512Mi
      limits:
        memory: 1Gi
    pod:
      additionalEnv:
        # Bind on all interfaces so kubectl port-forward reaches the worker (decision 13).
        - name: HOSTNAME
          value: "0.0.0.0"

# External RDS, bundled PostgreSQL off (FR11). TLS because RDS is public (decision 15). The chart
# reads DATABASE_PASSWORD from the Secret; the image's entrypoint builds DATABASE_URL from it.
postgresql:
  deploy: false
  host: ${jsonencode(db_host)}
  port: ${db_port}
  args: "sslmode=require"
  shadowDatabaseUrl: ""
  auth:
    username: ${jsonencode(db_username)}
    database: ${jsonencode(db_name)}
    existingSecret: ${jsonencode(secret_name)}
    secretKeys:
      userPasswordKey: database-password

# Bundled ClickHouse, sized for two t3.medium nodes: one replica, no ZooKeeper (FR13).
clickhouse:
  deploy: true
  replicaCount: 1
  resourcesPreset: none
  resources:
    requests:
      cpu: 500m
      memory: 1536Mi
    limits:
      memory: 2Gi
  zookeeper:
    enabled: false
  # 02-deps' volume through 03-app's static claim (decision 24): the StatefulSet makes no volume
  # of its own, so a pause or a rebuild keeps traces, scores and evaluation results.
  persistence:
    enabled: true
    existingClaim: ${jsonencode(clickhouse_claim)}
  podAnnotations:
    checksum/langfuse-secrets: ${jsonencode(secret_checksum)}
  # Read by the chart (CLICKHOUSE_PASSWORD) and by the Bitnami subchart (the server's admin password).
  auth:
    existingSecret: ${jsonencode(secret_name)}
    existingSecretKey: clickhouse-password
  # 03-app's own NetworkPolicies say who reaches ClickHouse (network_policy.tf). The subchart's
  # would allow any source on all five ports and any egress, and NetworkPolicies add up.
  networkPolicy:
    enabled: false

# Bundled Redis (Valkey in this chart: service langfuse-redis-primary) (FR13).
redis:
  deploy: true
  # Read by the chart (REDIS_PASSWORD) and by the Bitnami subchart (the server's password).
  auth:
    existingSecret: ${jsonencode(secret_name)}
    existingSecretPasswordKey: redis-password
  # 03-app's own NetworkPolicies say who reaches Valkey (network_policy.tf). The subchart's would
  # allow any source on 6379 and any egress, and NetworkPolicies add up.
  networkPolicy:
    enabled: false
  primary:
    podAnnotations:
      checksum/langfuse-secrets: ${jsonencode(secret_checksum)}
    resourcesPreset: none
    resources:
      requests:
        cpu: 100m
        memory: 128Mi
      limits:
        memory: 256Mi

# External S3 through IRSA, bundled MinIO off, no static keys (FR12).
s3:
  deploy: false
  bucket: ${jsonencode(s3_bucket_name)}
  region: ${jsonencode(s3_bucket_region)}
  forcePathStyle: false
  eventUpload:
    prefix: "events/"
  mediaUpload:
    enabled: true
    prefix: "media/"
  batchExport:
    enabled: true
    prefix: "exports/"
